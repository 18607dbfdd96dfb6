"""Ledger retention: old entries lose their person-data bodies (before/after) and keep the rest;
the daily job applies SAFETYAMP_LEDGER_RETENTION_DAYS. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from safetyamp_pipeline.clients.resources import SyncStoreResource
from safetyamp_pipeline.defs.ledger_retention import safetyamp_ledger_retention
from safetyamp_pipeline.sync.settings_env import DEFAULT_LEDGER_RETENTION_DAYS, ledger_retention_days
from safetyamp_pipeline_tests.store.conftest import StoreTarget, _pg_target

NOW = datetime.now(UTC)
BEFORE = {"emp_id": "7", "email": "jane.doe@example.com", "mobile_phone": "+13375550142"}
AFTER = {**BEFORE, "id": 4711, "email": "jane.d@example.com"}
KEPT = {"id": 4711}  # the written record's SafetyAmp id outlives its body (owned assets come from it)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path):
    """The store fixtures' targets: SQLite, and PostgreSQL (a fresh schema; skipped with the reason
    only when no server answers, a failure under SAFETYAMP_REQUIRE_PG=1)."""
    if request.param == "sqlite":
        yield StoreTarget("sqlite", f"sqlite:///{tmp_path / 'store.db'}", None)
    else:
        yield from _pg_target()


def _seed(store) -> None:
    for days, key in ((120, "old"), (40, "older_than_30"), (10, "recent")):
        store.ledger_append(run_id=f"run-{key}", entity="users", key=key, action="update", changed_fields=["email"],
                            before=BEFORE, after=AFTER, status="ok", http_status=200, at=NOW - timedelta(days=days))
    store.ledger_append(run_id="run-old", entity="users", key="failed", action="create", status="failed",
                        http_status=422, error="field email: taken", at=NOW - timedelta(days=120))


def _bodies(store) -> dict[str, tuple[bool, bool]]:
    """Per key: (has a before body, has a full after body)."""
    return {r["key"]: (r["before"] is not None, r["after"] not in (None, KEPT)) for r in store.ledger_query()}


def _run(target: StoreTarget, **config) -> dg.ExecuteInProcessResult:
    return safetyamp_ledger_retention.execute_in_process(
        run_config={"ops": {"prune_ledger_bodies": {"config": config}}} if config else None,
        resources={"store": SyncStoreResource(url=target.url, db_schema=target.schema)},
        raise_on_error=False,
    )


def test_old_bodies_are_dropped_and_the_entries_kept(target: StoreTarget):
    store = target.open()
    _seed(store)
    assert store.ledger_prune_bodies(NOW - timedelta(days=30)) == 2
    rows = {r["key"]: r for r in store.ledger_query()}
    assert _bodies(store) == {"old": (False, False), "older_than_30": (False, False), "recent": (True, True),
                              "failed": (False, False)}
    old = rows["old"]
    assert (old["action"], old["status"], old["changed_fields"], old["http_status"], old["run_id"]) == (
        "update", "ok", ["email"], 200, "run-old")
    assert rows["failed"]["error"] == "field email: taken"
    assert old["after"] == KEPT and old["before"] is None and rows["failed"]["after"] is None
    assert rows["recent"]["after"] == AFTER
    assert store.ledger_prune_bodies(NOW - timedelta(days=30)) == 0  # nothing left to drop
    store.close()


def test_the_daily_job_applies_the_retention_variable(target: StoreTarget, monkeypatch):
    store = target.open()
    _seed(store)
    monkeypatch.setenv("SAFETYAMP_LEDGER_RETENTION_DAYS", "60")
    result = _run(target)
    assert result.success
    assert _bodies(store)["old"] == (False, False) and _bodies(store)["older_than_30"] == (True, True)
    metadata = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert metadata["pruned_entries"].value == 1 and metadata["retention_days"].value == 60

    assert _run(target, retention_days=0).success  # 0 keeps everything
    assert _bodies(store)["older_than_30"] == (True, True)
    assert _run(target, retention_days=30).success
    assert _bodies(store) == {"old": (False, False), "older_than_30": (False, False), "recent": (True, True),
                              "failed": (False, False)}
    store.close()


def test_a_bad_retention_value_fails_the_run_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYAMP_LEDGER_RETENTION_DAYS", "ninety")
    result = _run(StoreTarget("sqlite", f"sqlite:///{tmp_path / 'store.db'}", None))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "SAFETYAMP_LEDGER_RETENTION_DAYS must be an integer, got 'ninety'" in failure.event_specific_data.error.message


def test_default_and_schedule():
    assert ledger_retention_days({}) == DEFAULT_LEDGER_RETENTION_DAYS == 90
    with pytest.raises(ValueError, match="SAFETYAMP_LEDGER_RETENTION_DAYS"):
        ledger_retention_days({"SAFETYAMP_LEDGER_RETENTION_DAYS": "-1"})
    from safetyamp_pipeline.definitions import defs

    schedule = defs().resolve_schedule_def("safetyamp_ledger_retention_daily")
    assert schedule.job_name == "safetyamp_ledger_retention" and schedule.cron_schedule == "15 3 * * *"
    from safetyamp_pipeline.defs.automation import SCHEDULE_STATUS

    assert schedule.default_status == SCHEDULE_STATUS
