"""The SafetyAmp request budget (the deterministic targets of ``make bench``), on a small data set:
an unchanged source costs no SafetyAmp request, and a day of churn costs exactly one request per
changed record. Request counts come from the emulator, which counts every request it receives."""

from __future__ import annotations

from collections import Counter

from benchmarks.churn import apply_churn
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun


def _vista_path(run: SandboxRun) -> str:
    return run.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///")


def test_unchanged_sources_cost_no_request_and_churn_one_request_per_changed_record(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    first = run.sync()
    assert first.success, first.failure
    assert first.total("created") > 100

    run.reset_requests()
    unchanged = run.sync()
    assert unchanged.success, unchanged.failure
    assert run.requests("safetyamp")["total"] == 0, run.requests("safetyamp")
    samsara = run.requests("samsara")["by_route"]
    assert set(samsara) == {"GET /fleet/vehicles"}, samsara

    churn = apply_churn(_vista_path(run), run.state(), share=0.05, hires=2, terminations=2, new_jobs=1)
    assert len(churn.edited) >= 5 and len(set(churn.edited.values())) >= 5

    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    routes = run.requests("safetyamp")["by_route"]
    assert routes == {
        "PATCH /api/users/{id}": len(churn.edited) + len(churn.terminated),
        "POST /api/users": len(churn.hired),
        "POST /api/sites": len(churn.new_jobs),
    }, routes
    assert sum(routes.values()) == churn.expected_writes

    # Each changed record was written once, and it was the right record.
    written = Counter((r["entity"], r["key"]) for r in run.store.ledger_query(run_id=outcome.run_id) if r["status"] == "ok")
    assert all(n == 1 for n in written.values()), written
    assert {key for entity, key in written if entity == "users"} == churn.user_keys
    assert {key for entity, key in written if entity == "sites"} == set(churn.new_jobs)
    state = {u["emp_id"]: u for u in run.state()["users"]}
    assert all(not state[emp]["system_access"] for emp in churn.terminated)
    assert all(state[emp]["system_access"] for emp in churn.hired)
