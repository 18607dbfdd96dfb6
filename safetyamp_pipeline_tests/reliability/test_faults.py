"""SafetyAmp failing 20 % of the time (5xx and dropped connections) plus 429 bursts: repeated syncs
converge to exactly what a fault-free sync of the same data produces, with no duplicate and with
every failed attempt in the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from safetyamp_pipeline_tests.reliability.helpers import (
    duplicates,
    record_count,
    report,
    start,
    state_differences,
    stop,
)

# drop_rate is drawn first, then error_rate: 0.06 + 0.94 * 0.15 = 20 % of requests fail.
FAULTS = {"error_rate": 0.15, "error_statuses": [500, 502, 503], "drop_rate": 0.06, "burst_429": 3}
MAX_RUNS = 3


def _converge_under_faults(tmp: Path, seed: int, employees: int) -> dict:
    reference = start(tmp / "reference", employees=employees, seed=seed)
    try:
        assert reference.sync().success
        expected = reference.state()
        expected_rejected = {(f["entity"], f["key"]) for f in reference.store.failures_open()}
    finally:
        stop(reference)

    run = start(tmp / "faulty", employees=employees, seed=seed)
    try:
        runs, injected_requests = [], 0
        for attempt in range(1, MAX_RUNS + 1):
            run.set_faults(**FAULTS, seed=seed * 100 + attempt)
            run.reset_requests()
            outcome = run.sync()
            requests = run.requests()["total"]
            injected_requests += requests
            state = run.state()
            assert not duplicates(state), f"run {attempt}: duplicates {duplicates(state)}"

            # Every failed attempt of the run is in the ledger, and a record still failed at the end
            # of the run is an open failure with a ledger entry of that run.
            failed_entries = run.store.ledger_query(run_id=outcome.run_id, status="failed")
            assert len(failed_entries) >= outcome.total("failed")
            transient_open = {(f["entity"], f["key"]) for f in run.store.failures_open() if f["kind"] == "transient"}
            ledgered = {(e["entity"], e["key"]) for e in failed_entries}
            assert transient_open <= ledgered | {
                (e["entity"], e["key"]) for e in run.store.ledger_query(status="failed")
            }, "a transient failure without a ledger entry"
            runs.append({"run": attempt, "success": outcome.success, "requests": requests,
                         "failed_attempts": len(failed_entries), "still_failed": outcome.total("failed"),
                         "created": outcome.total("created")})
            if outcome.success and not state_differences(state, expected) and not transient_open:
                break
        assert not state_differences(run.state(), expected), (runs, state_differences(run.state(), expected)[:10])
        assert sum(r["failed_attempts"] for r in runs) > 0, "the faults never hit a write: the test proves nothing"

        # Fault-free full read + plan: nothing left to write, and the same records are held back as
        # in the reference sync (422s, not transient failures).
        run.set_faults()
        check = run.sync("safetyamp_reconcile", tags={"dry_run": "true"})
        assert check.success, check.failure
        assert check.total("planned_create") + check.total("planned_update") + check.total("planned_deactivate") == 0
        assert {(f["entity"], f["key"]) for f in run.store.failures_open()} == expected_rejected
        # Every record created in SafetyAmp has exactly one successful create in the ledger.
        created_ok = run.store.ledger_query(status="ok")
        creates = [(e["entity"], e["key"]) for e in created_ok if e["action"] == "create"]
        assert len(creates) == len(set(creates))
        return {"runs": runs, "records": record_count(run.state()), "requests": injected_requests}
    finally:
        stop(run)


def test_twenty_percent_faults_converge_within_three_runs(tmp_path: Path) -> None:
    result = _converge_under_faults(tmp_path, seed=5, employees=90)
    assert len(result["runs"]) <= MAX_RUNS
    report("faults", result)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [17, 23])
def test_twenty_percent_faults_converge_other_seeds(tmp_path: Path, seed: int) -> None:
    result = _converge_under_faults(tmp_path, seed=seed, employees=120)
    assert len(result["runs"]) <= MAX_RUNS
    report("faults", result)
