"""Freshness policies of the sink assets: the UI marks a sink whose last success is too old, and
``sync_alerts`` reports it (``freshness_state`` applies the same time windows)."""

from datetime import timedelta

import dagster as dg

# The hourly sync writes every sink; two missed hours warn, a missed working day fails.
_WINDOWS = {"users": (timedelta(hours=2), timedelta(hours=6))}
_DEFAULT = (timedelta(hours=3), timedelta(hours=26))

PASS, WARN, FAIL, UNKNOWN = "PASS", "WARN", "FAIL", "UNKNOWN"


def sink_freshness_policy(entity: str) -> dg.FreshnessPolicy:
    warn, fail = _WINDOWS.get(entity, _DEFAULT)
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)


def policy_windows(policy: object) -> tuple[timedelta | None, timedelta] | None:
    """(warn window, fail window) of a time-window freshness policy; None for any other policy."""
    fail = getattr(policy, "fail_window", None)
    if fail is None:
        return None
    warn = getattr(policy, "warn_window", None)
    return (warn.to_timedelta() if warn is not None else None), fail.to_timedelta()


def freshness_state(windows: tuple[timedelta | None, timedelta], last_success: float | None, now: float) -> str:
    """PASS/WARN/FAIL as the time windows judge the age of the last materialization; UNKNOWN
    when there was none yet."""
    if last_success is None:
        return UNKNOWN
    warn, fail = windows
    age = timedelta(seconds=max(now - last_success, 0.0))
    if age > fail:
        return FAIL
    if warn is not None and age > warn:
        return WARN
    return PASS
