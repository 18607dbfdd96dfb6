"""The failure queue in the Dagster UI: a table in each sink's metadata, and the job
`safetyamp_failures` that retries or dismisses records like `failures retry/dismiss`."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from safetyamp_pipeline.sync.failure_queue import FAILURE_QUEUE_COLUMNS
from safetyamp_pipeline.sync.headless import environment
from safetyamp_pipeline_tests.operator.test_failures import _employee_sync, _patches, _vista_email_employee


def _run_action(synced, **config: Any) -> dg.ExecuteInProcessResult:
    with environment(synced.run.env):
        from safetyamp_pipeline.definitions import defs

        job = defs().resolve_job_def("safetyamp_failures")
        return job.execute_in_process(
            run_config={"ops": {"failure_queue_action": {"config": config}}},
            instance=synced.run.instance,
            raise_on_error=False,
        )


def _queue(result: dg.ExecuteInProcessResult) -> dg.TableMetadataValue:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    return event.event_specific_data.metadata["failure_queue"]


@pytest.fixture(scope="module")
def refused(synced):
    """A second employee whose new Vista e-mail a hand-made SafetyAmp user holds (a real 422)."""
    taken_keys = {f["key"] for f in synced.run.store.failures_open("users")}
    mirror = synced.run.store.mirror_records("users")
    key = next(r.key for r in synced.desired("desired/users")
               if not r.rejected and not r.deactivate and r.key in mirror and r.key not in taken_keys
               and r.provenance.get("email") == "Vista bPREH.Email" and r.key != _vista_email_employee(synced)[0])
    taken = f"queue.by.hand.{key}@iandi-co.example"
    response = synced.run.safetyamp("POST", "/api/users", json={"first_name": "Queue", "last_name": "Hand", "email": taken})
    assert response.status_code in (200, 201), response.text
    with synced.run.vista() as db:
        db.execute("UPDATE bPREH SET Email = ? WHERE Employee = ?", (taken, int(key)))
    synced.run.reset_requests()
    outcome = synced.run.sync(job="safetyamp_employee_sync")
    assert outcome.success, outcome.failure
    return key, taken, outcome


def test_each_sink_shows_its_failure_queue(refused):
    key, taken, outcome = refused
    table = outcome.sinks["users"]["failure_queue"]
    assert [c.name for c in table.schema.columns] == list(FAILURE_QUEUE_COLUMNS)
    row = next(r.data for r in table.records if r.data["key"] == key)
    assert row["kind"] == "rejected" and row["held"] is True and row["attempts"] == 1
    assert row["fields"] == "email: The email has already been taken." and row["since"]
    assert outcome.sinks["users"]["open_failures"] >= 1
    assert not any(taken in str(v) for r in table.records for v in r.data.values())
    assert outcome.sinks["user_titles"]["failure_queue"].records == []


def test_retry_then_dismiss_from_the_ui(synced, refused):
    key = refused[0]
    retried = _run_action(synced, action="retry", entity="employee", keys=[key.zfill(6)])
    assert retried.success
    assert synced.run.store.failure_get("users", key)["retry_requested"] is True
    row = next(r.data for r in _queue(retried).records if r.data["key"] == key)
    assert row["retry_requested"] is True and row["held"] is False and row["entity"] == "users"

    _employee_sync(synced)
    assert _patches(synced) == 1, "the retried record is sent again"
    assert synced.run.store.failure_get("users", key)["attempts"] == 2

    dismissed = _run_action(synced, action="dismiss", entity="users", keys=[key])
    assert dismissed.success
    assert key not in {f["key"] for f in synced.run.store.failures_open("users")}
    assert key not in {r.data["key"] for r in _queue(dismissed).records}


def test_unknown_keys_and_missing_keys_fail_the_run_with_the_reason(synced):
    unknown = _run_action(synced, action="dismiss", entity="users", keys=["424242"])
    assert not unknown.success
    failure = next(e for e in unknown.all_events if e.is_step_failure)
    assert "no failure recorded under key '424242' for users" in failure.event_specific_data.error.message
    assert not _run_action(synced, action="retry", entity="users").success
