"""Business settings from the environment: every field of ``core.settings.SyncSettings`` as a
``SAFETYAMP_*`` variable (defaults unchanged), plus the operator settings outside the sync rules.

``core/`` stays free of I/O: this module reads the environment and builds the plain settings.
The variable for a field is ``SAFETYAMP_`` + the field name upper-cased (``vehicle_site_name`` →
``SAFETYAMP_VEHICLE_SITE_NAME``), except the few with an older name kept in ``ALIASES``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from safetyamp_pipeline.core.settings import SyncSettings

LEDGER_RETENTION_DAYS_VAR = "SAFETYAMP_LEDGER_RETENTION_DAYS"
DEFAULT_LEDGER_RETENTION_DAYS = 90

# Fields whose variable predates this module (DESIGN §6 and the deployment docs use these names).
ALIASES = {
    "pr_company": "VIEWPOINT_PR_COMPANY",
    "jc_company": "VIEWPOINT_JC_COMPANY",
    "term_window_days": "SAFETYAMP_TERMINATED_WINDOW_DAYS",
    "active_employee_drop_share": "SAFETYAMP_EMPLOYEE_DROP_SHARE",
}


class SettingsError(ValueError):
    """A variable holds a value its setting cannot take; the message names the variable."""


def variable_name(field: str) -> str:
    return ALIASES.get(field, f"SAFETYAMP_{field.upper()}")


def _parse(name: str, raw: str, default: Any) -> Any:
    kind = type(default) if default is not None else int  # the only optional field is a day count
    try:
        if kind is bool:
            folded = raw.lower()
            if folded not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return folded in ("1", "true", "yes")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise SettingsError(f"environment variable {name} must be {expected}, got {raw!r}") from None
    return raw


def settings_overrides(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``SyncSettings`` fields set in ``env`` (empty variables are unset), parsed."""
    env = os.environ if env is None else env
    found: dict[str, Any] = {}
    for field in dataclasses.fields(SyncSettings):
        name = variable_name(field.name)
        raw = (env.get(name) or "").strip()
        if raw:
            found[field.name] = _parse(name, raw, field.default)
    return found


def sync_settings_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> SyncSettings:
    """``SyncSettings`` with every field the environment sets; ``overrides`` (e.g. values a
    Dagster resource was configured with) win over the environment."""
    return SyncSettings(**{**settings_overrides(env), **overrides})


def documented_settings() -> list[tuple[str, str, Any]]:
    """(variable, field, default) for every business setting, for the docs and ``doctor``."""
    return [(variable_name(f.name), f.name, f.default) for f in dataclasses.fields(SyncSettings)]


def ledger_retention_days(env: Mapping[str, str] | None = None) -> int:
    """Days the ledger keeps record bodies (``before``/``after``); 0 keeps them forever."""
    env = os.environ if env is None else env
    raw = (env.get(LEDGER_RETENTION_DAYS_VAR) or "").strip()
    if not raw:
        return DEFAULT_LEDGER_RETENTION_DAYS
    days = _parse(LEDGER_RETENTION_DAYS_VAR, raw, DEFAULT_LEDGER_RETENTION_DAYS)
    if days < 0:
        raise SettingsError(f"environment variable {LEDGER_RETENTION_DAYS_VAR} must be 0 (keep) or more days, got {raw!r}")
    return days
