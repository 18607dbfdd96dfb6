"""End-to-end (issue 16.3): a record SafetyAmp refused with a 422 is held, not re-sent every hour;
``retry_failed=true`` re-sends it; a change of its Vista row re-sends it on its own; an expired
mirror forces one full read. One sandbox for the module; the tests run in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox, users_by_emp_id

TAKEN_MOBILE = "+15045550187"
TAKEN_MOBILE_VISTA = "(504) 555-0187"
FREE_MOBILE_VISTA = "(504) 555-0199"
PATCH_USER = "PATCH /api/users/{id}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path_factory.mktemp("held")) as sandbox_run:
        yield sandbox_run


def _writes(run: SandboxRun) -> dict[str, int]:
    routes = run.requests("safetyamp")["by_route"]
    return {r: n for r, n in routes.items() if not r.startswith("GET")}


def _set_cell_phone(run: SandboxRun, employee: str, phone: str) -> None:
    with run.vista() as db:
        db.execute("UPDATE bPREH SET CellPhone = ? WHERE PRCo = 1 AND Employee = ?", (phone, int(employee)))


def _failure(run: SandboxRun, employee: str) -> dict | None:
    return next((f for f in run.store.failures_open(entity="users") if f["key"] == employee), None)


def test_a_record_refused_with_422_is_recorded_and_held(run: SandboxRun) -> None:
    users = users_by_emp_id(run)
    employee = next(k for k, u in users.items() if u.get("system_access") and u.get("mobile_phone") != TAKEN_MOBILE)
    # Someone adds a user by hand holding the mobile number the employee is about to get.
    response = run.safetyamp("POST", "/api/users", json={
        "first_name": "Hand", "last_name": "Made", "email": "hand.made@example.com", "mobile_phone": TAKEN_MOBILE,
    })
    assert response.status_code == 201, response.text
    _set_cell_phone(run, employee, TAKEN_MOBILE_VISTA)
    run.reset_requests()

    outcome = run.sync()

    assert outcome.success, outcome.failure  # writes_succeeded is a WARN check: the run goes on
    assert outcome.sinks["users"]["failed"] == 1
    assert _writes(run) == {PATCH_USER: 1}
    failure = _failure(run, employee)
    assert failure is not None and failure["kind"] == "rejected"
    assert "mobile" in failure["reason"].lower()
    assert users_by_emp_id(run)[employee]["mobile_phone"] != TAKEN_MOBILE
    run.employee = employee  # type: ignore[attr-defined]


def test_a_held_record_is_not_resent_while_nothing_changed(run: SandboxRun) -> None:
    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    assert outcome.sinks["users"]["held_failed"] == 1
    assert outcome.sinks["users"]["failed"] == 0
    assert run.requests("safetyamp")["total"] == 0


def test_retry_failed_resends_the_held_record(run: SandboxRun) -> None:
    employee = run.employee  # type: ignore[attr-defined]
    attempts = _failure(run, employee)["attempts"]
    run.reset_requests()
    outcome = run.sync(tags={"retry_failed": "true"})
    assert outcome.success, outcome.failure
    assert _writes(run) == {PATCH_USER: 1}
    assert outcome.sinks["users"]["failed"] == 1 and outcome.sinks["users"]["held_failed"] == 0
    assert _failure(run, employee)["attempts"] == attempts + 1


def test_a_change_of_the_vista_row_resends_the_record_on_its_own(run: SandboxRun) -> None:
    employee = run.employee  # type: ignore[attr-defined]
    _set_cell_phone(run, employee, FREE_MOBILE_VISTA)
    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    assert _writes(run) == {PATCH_USER: 1}
    assert outcome.sinks["users"]["updated"] == 1 and outcome.sinks["users"]["failed"] == 0
    assert users_by_emp_id(run)[employee]["mobile_phone"] == "+15045550199"
    assert _failure(run, employee) is None


def test_an_expired_mirror_forces_one_full_read(run: SandboxRun) -> None:
    store = run.store
    reads = sa.Table("sync_mirror_reads", sa.MetaData(), autoload_with=store.engine)
    with store.engine.begin() as conn:  # a day and more has passed since the last full read
        conn.execute(sa.update(reads).values(read_at=datetime.now(UTC) - timedelta(hours=25)))
    run.reset_requests()

    expired = run.sync()

    assert expired.success, expired.failure
    assert all(expired.sinks[e]["full_read"] for e in ("site_clusters", "sites", "user_titles", "users", "assets"))
    routes = run.requests("safetyamp")["by_route"]
    assert routes.get("GET /api/users", 0) >= 1 and not _writes(run), routes
    assert expired.total("drift") == 1  # the user added by hand, now known

    run.reset_requests()
    fresh = run.sync()
    assert fresh.success, fresh.failure
    assert not any(s["full_read"] for s in fresh.sinks.values())
    assert run.requests("safetyamp")["total"] == 0
