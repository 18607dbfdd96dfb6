"""SIGKILL of the sync process at random points of the create and update phases, each followed by
a normal run: SafetyAmp ends exactly as a clean sync leaves it, without duplicates, and the ledger
shows every write that reached SafetyAmp (once)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.reliability.helpers import (
    duplicates,
    kill_when_requests_reach,
    report,
    spawn_sync,
    start,
    state_differences,
    stop,
    unrecorded_writes,
)

EMPLOYEES = 80


def _assert_ledger_covers(run, before: dict, after: dict) -> int:
    """Every record created or changed between two states has an ok ledger entry, and no create
    is recorded twice. Returns the number of writes checked."""
    written, missing = unrecorded_writes(run.store, before, after)
    assert not missing, f"written to SafetyAmp but not in the ledger: {missing[:10]}"
    return written


def _kill_then_recover(run, rng: random.Random, expected_requests: int, log: Path) -> dict:
    before = run.state()
    run.sandbox.safetyamp.reset_request_counts()
    threshold = rng.randint(3, max(4, expected_requests - 3))
    process = spawn_sync(run.env, log_path=log)
    seen = kill_when_requests_reach(process, run, threshold)
    killed_state = run.state()
    assert not duplicates(killed_state)
    recovery = run.sync()
    assert recovery.success, recovery.failure
    after = run.state()
    assert not duplicates(after), duplicates(after)
    checked = _assert_ledger_covers(run, before, after)
    recovered = [e for e in run.store.ledger_query(status="ok", run_id=None) if (e.get("error") or "").startswith("answer not recorded")]
    return {"recovered_in_ledger": len(recovered), "threshold": threshold, "killed_at_request": seen, "killed": seen >= 0, "ledger_checked": checked,
            "recovery_created": recovery.total("created"), "recovery_updated": recovery.total("updated"),
            "open_intents_after": len(run.store.intents_open())}


def _change_employees(run, rng: random.Random, count: int) -> None:
    """Vista edits that make the next sync send ``count`` user updates."""
    with run.vista() as db:
        rows = db.execute(
            "SELECT Employee FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL ORDER BY Employee"
        ).fetchall()
        for (employee,) in rng.sample(rows, min(count, len(rows))):
            db.execute("UPDATE bPREH SET City = ? WHERE PRCo = 1 AND Employee = ?", (f"Town {rng.randint(1, 999)}", employee))
        db.commit()


def _scenario(tmp: Path, seed: int, rounds: int) -> list[dict]:
    rng = random.Random(seed)
    reference = start(tmp / "reference", employees=EMPLOYEES, seed=seed)
    try:
        assert reference.sync().success
        expected_requests = reference.requests()["total"]
        expected = reference.state()
    finally:
        stop(reference)

    results = []
    for round_no in range(rounds):
        run = start(tmp / f"round{round_no}", employees=EMPLOYEES, seed=seed)
        try:
            # Kill during the first sync (creates), then during a sync of Vista edits (updates).
            results.append({"phase": "create", **_kill_then_recover(run, rng, expected_requests, tmp / f"c{round_no}.log")})
            # Killed and recovered, SafetyAmp holds exactly what a clean sync of the data gives.
            assert not state_differences(run.state(), expected), state_differences(run.state(), expected)[:10]
            _change_employees(run, rng, 30)
            reference_update = run.state()
            results.append({"phase": "update", **_kill_then_recover(run, rng, 18, tmp / f"u{round_no}.log")})
            # After recovery, a clean run has nothing left to do (the kill lost nothing).
            clean = run.sync("safetyamp_reconcile", tags={"dry_run": "true"})
            assert clean.success, clean.failure
            planned = sum(clean.total(c) for c in ("planned_create", "planned_update", "planned_deactivate"))
            assert planned == 0, clean.sinks
            assert reference_update != run.state()
        finally:
            stop(run)
    return results


def test_sigkill_during_creates_and_updates_loses_nothing(tmp_path: Path) -> None:
    results = _scenario(tmp_path, seed=41, rounds=1)
    assert any(r["killed"] for r in results), results
    report("sigkill", {"points": results})


@pytest.mark.slow
def test_sigkill_at_ten_random_points(tmp_path: Path) -> None:
    results = _scenario(tmp_path, seed=43, rounds=5)
    assert sum(r["killed"] for r in results) >= 9, results
    report("sigkill", {"points": results})
