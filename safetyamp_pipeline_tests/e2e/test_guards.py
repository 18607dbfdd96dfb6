"""End-to-end: the safety nets and their override tags through the real job (issue 16.3): dry run
of updates and deactivations, active_count_stable and ``allow_employee_drop``, the sink's
mass-deactivation guard and ``allow_mass_deactivation``. One sandbox for the module; the tests run
in order and build on each other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from safetyamp_pipeline_tests.e2e.checks import check_failed, check_passed
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox, users_by_emp_id

EMPLOYEES = ["viewpoint", "employees"]
YESTERDAY = (date.today() - timedelta(days=1)).isoformat() + " 00:00:00"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path_factory.mktemp("guards")) as sandbox_run:
        yield sandbox_run


def _active_employees_with_access(run: SandboxRun) -> list[int]:
    users = users_by_emp_id(run)
    with run.vista() as db:
        rows = db.execute(
            "SELECT Employee FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL ORDER BY Employee"
        ).fetchall()
    return [e for (e,) in rows if users.get(str(e), {}).get("system_access")]


def _terminate(run: SandboxRun, employees: list[int]) -> None:
    with run.vista() as db:
        db.executemany(
            "UPDATE bPREH SET TermDate = ? WHERE PRCo = 1 AND Employee = ?", [(YESTERDAY, e) for e in employees]
        )


def _writes(run: SandboxRun) -> dict[str, int]:
    routes = run.requests("safetyamp")["by_route"]
    return {r: n for r, n in routes.items() if r.startswith(("POST", "PUT", "PATCH", "DELETE"))}


def test_dry_run_plans_updates_and_deactivations_and_writes_nothing(run: SandboxRun) -> None:
    renamed, terminated = _active_employees_with_access(run)[:2], _active_employees_with_access(run)[2:4]
    with run.vista() as db:
        db.executemany("UPDATE bPREH SET FirstName = 'Dryrun' WHERE PRCo = 1 AND Employee = ?", [(e,) for e in renamed])
    _terminate(run, terminated)
    before = users_by_emp_id(run)
    run.reset_requests()

    dry = run.sync(tags={"dry_run": "true"})

    assert dry.success, dry.failure
    assert _writes(run) == {}
    assert users_by_emp_id(run) == before
    users = dry.sinks["users"]
    assert users["dry_run"] is True
    assert (users["planned_update"], users["planned_deactivate"]) == (2, 2)
    assert users["updated"] == users["deactivated"] == 0
    planned = {(r["key"], r["action"]) for r in run.store.ledger_query(run_id=dry.run_id) if r["entity"] == "users"}
    assert planned == {(str(e), "update") for e in renamed} | {(str(e), "deactivate") for e in terminated}
    assert {r["status"] for r in run.store.ledger_query(run_id=dry.run_id)} == {"planned"}

    real = run.sync()
    assert real.success, real.failure
    assert (real.sinks["users"]["updated"], real.sinks["users"]["deactivated"]) == (2, 2)
    after = users_by_emp_id(run)
    assert all(after[str(e)]["first_name"] == "Dryrun" for e in renamed)
    assert all(not after[str(e)]["system_access"] for e in terminated)


def test_a_large_drop_of_active_employees_stops_at_the_blocking_check(run: SandboxRun) -> None:
    active = _active_employees_with_access(run)
    share = 0.3  # above the 20 % the check allows, and far above the sink's 10 % guard
    victims = active[: int(len(active) * share)]
    assert len(victims) >= 10
    _terminate(run, victims)
    run.reset_requests()

    outcome = run.sync()

    assert not outcome.success
    metadata = check_failed(run.instance, EMPLOYEES, "active_count_stable", outcome.run_id)
    assert metadata["overridden"] is False and metadata["active"] < metadata["baseline"]
    assert "users" not in outcome.sinks and _writes(run) == {}
    run.victims = victims  # type: ignore[attr-defined]


def test_allow_employee_drop_passes_the_check_and_the_sink_guard_still_stops_before_any_write(run: SandboxRun) -> None:
    run.reset_requests()
    outcome = run.sync(tags={"allow_employee_drop": "true"})

    assert not outcome.success
    metadata = check_passed(run.instance, EMPLOYEES, "active_count_stable", outcome.run_id)
    assert metadata["overridden"] is True
    # The source step succeeded; the users sink refused the plan before its first write.
    assert "safetyamp__users" in (outcome.failure or ""), outcome.failure
    assert "allow_mass_deactivation=true" in (outcome.failure or ""), outcome.failure
    assert "users" not in outcome.sinks
    assert not any(r.startswith("PATCH /api/users") for r in _writes(run)), _writes(run)
    assert not [r for r in run.store.ledger_query(run_id=outcome.run_id) if r["entity"] == "users"]
    victims = run.victims  # type: ignore[attr-defined]
    assert all(users_by_emp_id(run)[str(e)]["system_access"] for e in victims)


def test_allow_mass_deactivation_lets_the_reviewed_deactivations_through(run: SandboxRun) -> None:
    victims = run.victims  # type: ignore[attr-defined]
    run.reset_requests()
    outcome = run.sync(tags={"allow_mass_deactivation": "true"})

    assert outcome.success, outcome.failure
    # The drop was accepted as the new baseline by the previous (overridden) run.
    check_passed(run.instance, EMPLOYEES, "active_count_stable", outcome.run_id)
    assert outcome.sinks["users"]["deactivated"] == len(victims)
    assert _writes(run) == {"PATCH /api/users/{id}": len(victims)}
    users = users_by_emp_id(run)
    assert all(not users[str(e)]["system_access"] for e in victims)
