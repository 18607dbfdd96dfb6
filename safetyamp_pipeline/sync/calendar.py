"""Payroll weeks: the weekly partitions of ``viewpoint/job_assignments``.

A partition key is the Monday that starts a week; the partition holds the payroll rows whose
``PREndDate`` falls on that Monday through the following Sunday.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import dagster as dg

DEFAULT_PAYROLL_START = "2024-01-01"
PAYROLL_TIMEZONE = os.environ.get("SAFETYAMP_TIMEZONE", "America/Chicago")

PAYROLL_WEEKS = dg.WeeklyPartitionsDefinition(
    start_date=os.environ.get("VIEWPOINT_PAYROLL_START", DEFAULT_PAYROLL_START),
    day_offset=1,
    end_offset=1,
    timezone=PAYROLL_TIMEZONE,
)


def week_key(day: date) -> str:
    if isinstance(day, datetime):
        day = day.date()
    return (day - timedelta(days=day.weekday())).isoformat()


def week_bounds(key: str) -> tuple[date, date]:
    start = date.fromisoformat(key)
    return start, start + timedelta(days=6)


def lookback_keys(as_of: date, weeks: int) -> list[str]:
    """The keys of the ``weeks`` weeks ending with the week containing ``as_of`` (oldest first)."""
    current = date.fromisoformat(week_key(as_of))
    return [(current - timedelta(weeks=n)).isoformat() for n in range(weeks - 1, -1, -1)]


def today_in_payroll_tz() -> date:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(PAYROLL_TIMEZONE)).date()


def current_week_key() -> str:
    return week_key(today_in_payroll_tz())


def weeks_to_load(own: list[str], stored: set[str], lookback_weeks: int, today: date, valid: set[str]) -> list[str]:
    """The weeks a run of ``viewpoint/job_assignments`` reads: its own partitions (one week, or a
    backfill's range), plus, when they include the week of ``today``, the previous week (payroll
    posted late is refreshed) and every look-back week not ``stored`` yet. Only ``valid`` keys."""
    weeks = set(own)
    window = lookback_keys(today, lookback_weeks)
    if window[-1] in weeks:
        weeks.update(k for k in window[:-1] if (len(window) > 1 and k == window[-2]) or k not in stored)
    return sorted(w for w in weeks if w in valid)
