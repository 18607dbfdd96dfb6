"""End-to-end: a source value whose blocking check failed is never used by any run (issue 16.1),
and the Entra guard counts users that have ``mail`` (issue 15.9). Through the real job on the
sandbox; one sandbox for the module, the tests run in order and build on each other."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline_tests.e2e.checks import check_failed, check_passed
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox

ENTRA = ["entra", "users"]
EMPLOYEES = ["viewpoint", "employees"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path_factory.mktemp("run_scoped")) as sandbox_run:
        yield sandbox_run


def _desired_users(run: SandboxRun) -> dict[str, dict]:
    return {
        r.key: {**r.fields, "deactivate": r.deactivate}
        for r in map(record_from_row, run.store.load_asset_value("desired/users"))
    }


def _writes(run: SandboxRun) -> dict[str, int]:
    routes = run.requests("safetyamp")["by_route"]
    return {r: n for r, n in routes.items() if r.startswith(("POST", "PUT", "PATCH", "DELETE"))}


def test_lost_mail_trips_the_entra_guard_even_though_every_upn_is_there(run: SandboxRun) -> None:
    graph = run.state("graph")
    emails_before = {k: f.get("email") for k, f in _desired_users(run).items()}
    assert sum(1 for e in emails_before.values() if e) > 20
    # The directory answers, every account keeps its UPN, but `mail` is gone from most of them.
    broken = [{**u, "mail": None} if i % 5 else u for i, u in enumerate(graph["users"])]
    assert all(u.get("userPrincipalName") for u in broken)
    run._admin("graph", "state", method="POST", json={"users": broken})
    run.reset_requests()

    outcome = run.sync()

    assert not outcome.success
    metadata = check_failed(run.instance, ENTRA, "email_count_stable", outcome.run_id)
    assert metadata["with_email"] < metadata["baseline"]
    assert "users" not in outcome.sinks and _writes(run) == {}
    # The refused read is kept as pending, never as the value others load.
    store = run.store
    assert store.asset_value_state("entra/users", outcome.run_id) == "pending"
    accepted = store.load_asset_value("entra/users")
    assert sum(1 for u in accepted if u.get("mail")) == sum(1 for u in graph["users"] if u.get("mail"))
    # The same run's other sources were accepted as usual.
    assert store.asset_value_state("viewpoint/employees", outcome.run_id) == "accepted"
    run.refused_run_id = outcome.run_id  # type: ignore[attr-defined]
    run.emails_before = emails_before  # type: ignore[attr-defined]


def test_a_manual_desired_users_after_the_refused_read_uses_the_last_accepted_value(run: SandboxRun) -> None:
    run.reset_requests()
    outcome = run.sync(selection=[dg.AssetKey(["desired", "users"]), dg.AssetKey(["safetyamp", "users"])])
    assert outcome.success, outcome.failure
    emails = {k: f.get("email") for k, f in _desired_users(run).items()}
    assert emails == run.emails_before  # type: ignore[attr-defined]
    assert _writes(run) == {}
    assert outcome.sinks["users"]["updated"] == 0


def test_a_later_employee_sync_with_the_read_still_broken_is_refused_again(run: SandboxRun) -> None:
    run.reset_requests()
    outcome = run.sync("safetyamp_employee_sync")
    assert not outcome.success
    check_failed(run.instance, ENTRA, "email_count_stable", outcome.run_id)
    assert _writes(run) == {}
    assert {k: f.get("email") for k, f in _desired_users(run).items()} == run.emails_before  # type: ignore[attr-defined]


def test_once_the_directory_is_repaired_its_read_is_accepted_and_used(run: SandboxRun) -> None:
    graph = run.state("graph")
    repaired = [{**u, "mail": u.get("mail") or u["userPrincipalName"]} for u in graph["users"]]
    run._admin("graph", "state", method="POST", json={"users": repaired})
    outcome = run.sync("safetyamp_employee_sync")
    assert outcome.success, outcome.failure
    check_passed(run.instance, ENTRA, "email_count_stable", outcome.run_id)
    assert run.store.asset_value_state("entra/users", outcome.run_id) == "accepted"


def test_a_refused_employee_read_is_not_used_by_a_later_desired_users(run: SandboxRun) -> None:
    before = _desired_users(run)
    deactivating_before = sum(1 for f in before.values() if f["deactivate"])
    with run.vista() as db:  # a broken extract: most active employees vanish
        db.execute("DELETE FROM bPREH WHERE Employee % 10 != 0")
    outcome = run.sync("safetyamp_employee_sync")
    assert not outcome.success
    metadata = check_failed(run.instance, EMPLOYEES, "active_count_stable", outcome.run_id)
    assert metadata["active"] < metadata["baseline"]
    assert run.store.asset_value_state("viewpoint/employees", outcome.run_id) == "pending"

    run.reset_requests()
    manual = run.sync(selection=[dg.AssetKey(["desired", "users"]), dg.AssetKey(["safetyamp", "users"])])
    assert manual.success, manual.failure
    after = _desired_users(run)
    assert after.keys() == before.keys()
    assert sum(1 for f in after.values() if f["deactivate"]) == deactivating_before
    assert manual.sinks["users"]["deactivated"] == 0 and _writes(run) == {}
