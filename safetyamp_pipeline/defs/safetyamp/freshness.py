"""Freshness policies of the sink assets: the UI marks a sink whose last success is too old."""

from datetime import timedelta

import dagster as dg

# The hourly sync writes every sink; two missed hours warn, a missed working day fails.
_WINDOWS = {"users": (timedelta(hours=2), timedelta(hours=6))}
_DEFAULT = (timedelta(hours=3), timedelta(hours=26))


def sink_freshness_policy(entity: str) -> dg.FreshnessPolicy:
    warn, fail = _WINDOWS.get(entity, _DEFAULT)
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)
