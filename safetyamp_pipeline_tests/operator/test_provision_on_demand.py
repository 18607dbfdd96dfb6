"""`safetyamp_provision_on_demand` (DESIGN §6): sync exactly the named records now, one GET each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest

from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline.sync.headless import environment
from safetyamp_pipeline.sync.write_lease import WRITE_LEASE
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

USER_PATCH = "PATCH /api/users/{id}"
USER_GET = "GET /api/users/{id}"


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxRun, str, str]]:
    """A synced sandbox, then two Vista edits (last names of employees A and B)."""
    sandbox, run = start_run(tmp_path_factory.mktemp("provision"))
    try:
        outcome = run.sync()
        assert outcome.success, outcome.failure
        mirror = run.store.mirror_records("users")
        desired = [record_from_row(r) for r in run.store.load_asset_value("desired/users")]
        a, b = [r.key for r in desired if not r.rejected and not r.deactivate and r.key in mirror][:2]
        with run.vista() as db:
            db.execute("UPDATE bPREH SET LastName = 'Provisioned' WHERE Employee = ?", (int(a),))
            db.execute("UPDATE bPREH SET LastName = 'NextSync' WHERE Employee = ?", (int(b),))
        yield run, a, b
    finally:
        run.instance.dispose()
        sandbox.stop()


def _provision(run: SandboxRun, **config: Any) -> dg.ExecuteInProcessResult:
    full = {"employees": [], "jobs": [], "vehicles": [], "dry_run": False, **config}
    with environment(run.env):
        from safetyamp_pipeline.definitions import defs

        job = defs().resolve_job_def("safetyamp_provision_on_demand")
        assert job.tags["safetyamp/lane"] == "sync"
        return job.execute_in_process(
            run_config={"ops": {"provision_on_demand": {"config": full}}}, instance=run.instance, raise_on_error=False
        )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    return next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata


def _user(run: SandboxRun, key: str) -> dict:
    return next(u for u in run.state("safetyamp")["users"] if str(u.get("emp_id")) == key)


def test_dry_run_reads_one_record_writes_nothing_and_shows_the_plan(edited):
    run, a, _ = edited
    before = _user(run, a)["last_name"]
    run.reset_requests()
    result = _provision(run, employees=[a], dry_run=True)
    assert result.success
    assert run.requests("safetyamp")["by_route"] == {USER_GET: 1}
    assert _user(run, a)["last_name"] == before
    metadata = _metadata(result)
    [record] = [r.data for r in metadata["records"].records]
    assert (record["key"], record["action"], record["status"]) == (a, "update", "planned")
    assert "last_name" in record["fields"].split(", ")
    change = next(r.data for r in metadata["changes"].records if r.data["field"] == "last_name")
    assert (change["before"], change["after"]) == (before, "Provisioned")


def test_one_employee_is_synced_now_with_one_patch_and_the_other_edit_waits(edited):
    run, a, b = edited
    b_before = _user(run, b)["last_name"]
    run.reset_requests()
    result = _provision(run, employees=[a.zfill(6)])
    assert result.success
    routes = run.requests("safetyamp")["by_route"]
    assert routes.get(USER_PATCH) == 1 and sum(routes.values()) <= 3, routes
    assert not any(route.startswith("GET /api/users") and "{id}" not in route for route in routes)  # no list read
    assert _user(run, a)["last_name"] == "Provisioned" and _user(run, b)["last_name"] == b_before
    [record] = [r.data for r in _metadata(result)["records"].records]
    assert (record["action"], record["status"]) == ("update", "ok")
    ledger = run.store.ledger_query(run_id=result.run_id)
    assert [(e["entity"], e["key"], e["action"], e["status"]) for e in ledger] == [("users", a, "update", "ok")]

    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    assert run.requests("safetyamp")["by_route"].get(USER_PATCH) == 1  # B only; A is in step already
    assert _user(run, b)["last_name"] == "NextSync"


def test_unknown_records_are_reported_and_an_empty_request_fails(edited):
    run, _, _ = edited
    result = _provision(run, employees=["99999999"], jobs=["no-such-job"])
    assert result.success
    rows = {(r.data["entity"], r.data["requested"]): r.data["status"] for r in _metadata(result)["records"].records}
    assert rows == {("users", "99999999"): "not found", ("sites", "no-such-job"): "not found"}
    empty = _provision(run)
    assert not empty.success
    failure = next(e for e in empty.all_events if e.is_step_failure)
    assert "Name at least one record" in failure.event_specific_data.error.message


def test_a_job_and_a_vehicle_by_their_operator_keys(edited):
    run, _, _ = edited
    sites = run.store.mirror_records("sites")
    desired_sites = [record_from_row(r) for r in run.store.load_asset_value("desired/sites")]
    job = next(r.key for r in desired_sites if not r.rejected and r.key in sites)
    with run.vista() as db:
        db.execute("UPDATE bJCJM SET Description = 'Renamed On Demand' WHERE trim(Job) = ?", (job.strip(),))
    vehicles = run.store.load_asset_value("samsara/vehicles")
    assets = run.store.mirror_records("assets")
    vehicle = next(v for v in vehicles if v.get("licensePlate") and str(v.get("serial", "")).upper() in assets)
    plate = vehicle["licensePlate"]
    run.reset_requests()
    result = _provision(run, jobs=[job.rstrip(".")], vehicles=[plate.lower()])
    assert result.success
    routes = run.requests("safetyamp")["by_route"]
    assert routes == {"GET /api/sites/{id}": 1, "PUT /api/sites/{id}": 1, "GET /api/assets/{id}": 1}, routes  # sites are PUT
    rows = {r.data["entity"]: r.data for r in _metadata(result)["records"].records}
    assert (rows["sites"]["action"], rows["sites"]["status"]) == ("update", "ok")
    assert (rows["assets"]["requested"], rows["assets"]["action"]) == (plate.lower(), "unchanged")
    site = next(s for s in run.state("safetyamp")["sites"] if s["id"] == sites[job]["id"])
    assert "Renamed On Demand" in site["name"]


def test_a_twin_user_is_listed_by_the_no_duplicate_keys_check(edited):
    """(Sink metadata, issue 15.6) Two SafetyAmp users with one emp_id: the reconcile's check names them."""
    run, a, _ = edited
    original = _user(run, a)
    twin = run.safetyamp("POST", "/api/users", json={
        "emp_id": original["emp_id"], "first_name": "Twin", "last_name": "Twin", "email": f"twin.{a}@example.test"})
    assert twin.status_code == 201, twin.text
    outcome = run.sync("safetyamp_reconcile")
    assert outcome.success, outcome.failure
    checks = [e.dagster_event.event_specific_data for e in run.instance.all_logs(outcome.run_id)
              if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    users = next(c for c in checks if c.check_name == "no_duplicate_keys" and c.asset_key.path == ["safetyamp", "users"])
    assert users.passed is False
    rows = [r.data for r in users.metadata["records"].records]
    assert rows == [{"key": a, "kept_id": original["id"], "duplicate_ids": str(twin.json()["data"]["id"])}]
    sites = next(c for c in checks if c.check_name == "no_duplicate_keys" and c.asset_key.path == ["safetyamp", "sites"])
    assert sites.passed is True and sites.metadata["records"].records == []


def test_a_provision_waits_for_a_sink_that_holds_the_write_lease(edited):
    run, _, _ = edited
    sink = "other-run/users@another-pod:1"  # another pod: only its release (or expiry) frees the lease
    assert run.store.lease_try(WRITE_LEASE, sink, timedelta(minutes=5)) is None
    releaser = threading.Timer(1.5, run.store.lease_release, args=(WRITE_LEASE, sink))
    releaser.start()
    try:
        result = _provision(run, employees=["999999"])
    finally:
        releaser.join()
    messages = [entry.user_message for entry in run.instance.all_logs(result.run_id)]
    assert any(f"Waiting for the SafetyAmp write lease, held by {sink}" in m for m in messages), messages[-5:]
    assert run.store.lease_holder(WRITE_LEASE) is None
