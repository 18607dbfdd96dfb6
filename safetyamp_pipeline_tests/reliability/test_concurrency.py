"""Two `safetyamp_sync` runs started at the same moment, in two processes, on the same Dagster
instance, sync store and SafetyAmp: no duplicate create, and the SafetyAmp steps never overlap.

What protects it: every sink asset is in the pool `safetyamp_api` and the instance limits pools to
one slot (`concurrency.pools.default_limit: 1`, as the repository's dagster.yaml and the Helm values
set it). A sink step only starts once it holds the slot, and then plans from the store's mirror,
which the other run's writes have already updated; so the second run finds the records the first
created and plans no create for them. The client-side rate limit (one token bucket per run) is thus
in use by one run at a time: the budget is shared rather than doubled.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg

from safetyamp_pipeline_tests.reliability.helpers import (
    child_outcome,
    duplicates,
    report,
    spawn_sync,
    start,
    state_differences,
    stop,
)

POOL_CONFIG = """
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
    granularity: op
"""


def _sink_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, datetime, datetime]]:
    starts: dict[str, float] = {}
    intervals = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not (event.step_key or "").startswith("safetyamp__"):
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            intervals.append((event.step_key, starts[event.step_key], entry.timestamp))
    return intervals


def test_two_simultaneous_syncs_create_nothing_twice(tmp_path: Path) -> None:
    reference = start(tmp_path / "reference", employees=90, seed=37)
    try:
        assert reference.sync().success
        expected = reference.state()
        expected_posts = {r: n for r, n in reference.requests()["by_route"].items() if r.startswith("POST")}
    finally:
        stop(reference)

    run = start(tmp_path / "shared", employees=90, seed=37)
    try:
        home = Path(run.env["DAGSTER_HOME"])
        (home / "dagster.yaml").write_text(POOL_CONFIG)
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        processes = [spawn_sync(run.env, log_path=log) for log in logs]
        for process in processes:
            assert process.wait(300) == 0
        outcomes = [child_outcome(log) for log in logs]
        assert all(o and o["success"] for o in outcomes), [log.read_text()[-2000:] for log in logs]

        state = run.state()
        assert not duplicates(state), duplicates(state)
        assert not state_differences(state, expected), state_differences(state, expected)[:10]
        posts = {r: n for r, n in run.requests()["by_route"].items() if r.startswith("POST")}
        assert posts == expected_posts, (posts, expected_posts)
        created = [o["sinks"][e]["created"] for o in outcomes for e in o["sinks"]]
        assert sum(created) == sum(expected_posts.values())

        # The pool kept the SafetyAmp steps of the two runs apart in time.
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            a, b = (_sink_intervals(instance, o["run_id"]) for o in outcomes)
        finally:
            instance.dispose()
        assert len(a) == len(b) == 5
        overlaps = [(x[0], y[0]) for x in a for y in b if x[1] < y[2] and y[1] < x[2]]
        assert not overlaps, overlaps
        report("concurrent_runs", {"creates_first": sum(o["sinks"][e]["created"] for o in outcomes[:1] for e in o["sinks"]),
                                   "creates_second": sum(o["sinks"][e]["created"] for o in outcomes[1:] for e in o["sinks"]),
                                   "posts": sum(posts.values()), "overlapping_sink_steps": len(overlaps)})
    finally:
        stop(run)
