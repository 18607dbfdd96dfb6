"""Payroll weeks: week keys and bounds, the look-back window, and which weeks a run of
``viewpoint/job_assignments`` loads (its own, the previous week's refresh, the missing look-back)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from safetyamp_pipeline.sync.calendar import (
    PAYROLL_WEEKS,
    current_week_key,
    lookback_keys,
    today_in_payroll_tz,
    week_bounds,
    week_key,
    weeks_to_load,
)


@pytest.mark.parametrize(
    ("day", "key"),
    [
        (date(2026, 11, 30), "2026-11-30"),  # Monday
        (date(2026, 12, 5), "2026-11-30"),  # Saturday
        (date(2026, 12, 6), "2026-11-30"),  # Sunday still ends that week
        (date(2026, 12, 7), "2026-12-07"),
        (datetime(2026, 12, 6, 23, 59), "2026-11-30"),
        (date(2024, 12, 31), "2024-12-30"),  # across a year end
    ],
)
def test_week_key_is_the_monday_that_starts_the_week(day: date, key: str) -> None:
    assert week_key(day) == key


def test_week_bounds_run_monday_through_sunday() -> None:
    assert week_bounds("2026-11-30") == (date(2026, 11, 30), date(2026, 12, 6))


def test_lookback_is_the_given_number_of_weeks_ending_with_the_current_one() -> None:
    keys = lookback_keys(date(2026, 12, 5), 12)
    assert len(keys) == 12 and keys[-1] == "2026-11-30" and keys[0] == "2026-09-14"
    starts = [date.fromisoformat(k) for k in keys]
    assert all(b - a == timedelta(weeks=1) for a, b in zip(starts, starts[1:], strict=False))
    assert lookback_keys(date(2026, 12, 5), 1) == ["2026-11-30"]


def test_partitions_are_the_mondays_up_to_the_current_week() -> None:
    keys = PAYROLL_WEEKS.get_partition_keys()
    assert keys[-1] == current_week_key() == week_key(today_in_payroll_tz())
    assert all(date.fromisoformat(k).weekday() == 0 for k in keys)


TODAY = date(2026, 12, 5)
ALL_WEEKS = {(date(2026, 1, 5) + timedelta(weeks=n)).isoformat() for n in range(52)}


def test_the_current_week_refreshes_the_previous_week_and_fills_the_missing_lookback() -> None:
    window = lookback_keys(TODAY, 4)
    current, previous = window[-1], window[-2]
    assert weeks_to_load([current], set(window), 4, TODAY, ALL_WEEKS) == [previous, current]
    assert weeks_to_load([current], set(), 4, TODAY, ALL_WEEKS) == window
    assert weeks_to_load([current], set(window) - {window[0]}, 4, TODAY, ALL_WEEKS) == [window[0], previous, current]
    assert weeks_to_load([current], set(), 1, TODAY, ALL_WEEKS) == [current]


def test_weeks_before_the_first_partition_are_never_loaded() -> None:
    window = lookback_keys(date(2026, 1, 14), 4)
    assert weeks_to_load([window[-1]], set(), 4, date(2026, 1, 14), ALL_WEEKS) == ["2026-01-05", "2026-01-12"]


def test_a_past_week_or_a_backfill_range_loads_only_its_own_weeks() -> None:
    past = sorted(ALL_WEEKS)[-10:-6]
    assert weeks_to_load([past[0]], set(), 12, TODAY, ALL_WEEKS) == [past[0]]
    assert weeks_to_load(past, set(), 12, TODAY, ALL_WEEKS) == past
    # A range that reaches the current week also refreshes and fills like the hourly run.
    window = lookback_keys(TODAY, 3)
    assert weeks_to_load(window[-2:], set(), 3, TODAY, ALL_WEEKS) == window
    assert weeks_to_load(window[-2:], {window[0]}, 3, TODAY, ALL_WEEKS) == window[-2:]


def test_the_job_assignments_run_reads_those_weeks_from_its_context() -> None:
    from safetyamp_pipeline.defs.sources.viewpoint import _weeks_to_load

    class Context:
        instance = None
        partition_keys = [current_week_key()]

    keys = _weeks_to_load(Context(), set(), 3)  # type: ignore[arg-type]
    assert keys == [k for k in lookback_keys(today_in_payroll_tz(), 3) if k in set(PAYROLL_WEEKS.get_partition_keys())]
