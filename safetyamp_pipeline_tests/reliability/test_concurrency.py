"""Two `safetyamp_sync` runs started at the same moment, in two processes, on the same Dagster
instance, sync store and SafetyAmp: no duplicate create, and the SafetyAmp write phases never
overlap.

What protects it: each sink reads, plans and writes while holding the sync store's write lease
(`store.leases`), so the second run plans from the mirror the first one's writes updated and finds
the records it created. Every sink asset is also in the pool `safetyamp_api`, limited to one slot
(`concurrency.pools.default_limit: 1`, as the repository's dagster.yaml and the Helm values set
it), but Dagster's slot claim is not atomic: two runs reaching the pool at the same moment can both
get its one slot (CI saw both runs create the 13 site clusters). So the test runs twice: with that
pool, and with no pool limit at all, where only the lease keeps the runs apart.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

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


NO_POOL_CONFIG = """
telemetry:
  enabled: false
"""


def _write_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    """(holder, taken, released) of each SafetyAmp write lease the run held, from its log."""
    taken: dict[str, float] = {}
    intervals = []
    for entry in instance.all_logs(run_id):
        message = entry.user_message or ""
        if message.startswith("SafetyAmp write lease taken by "):
            taken[message.rsplit(" ", 1)[1]] = entry.timestamp
        elif message.startswith("SafetyAmp write lease released by "):
            holder = message.rsplit(" ", 1)[1]
            intervals.append((holder, taken.pop(holder), entry.timestamp))
    return intervals


@pytest.mark.parametrize("instance_config", [POOL_CONFIG, NO_POOL_CONFIG], ids=["pool", "no_pool"])
def test_two_simultaneous_syncs_create_nothing_twice(tmp_path: Path, instance_config: str) -> None:
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
        (home / "dagster.yaml").write_text(instance_config)
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

        # The lease kept the SafetyAmp write phases of the two runs apart in time.
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            a, b = (_write_intervals(instance, o["run_id"]) for o in outcomes)
        finally:
            instance.dispose()
        assert len(a) == len(b) == 5
        overlaps = [(x[0], y[0]) for x in a for y in b if x[1] < y[2] and y[1] < x[2]]
        assert not overlaps, overlaps
        if instance_config is POOL_CONFIG:
            report("concurrent_runs", {
                "creates_first": sum(o["sinks"][e]["created"] for o in outcomes[:1] for e in o["sinks"]),
                "creates_second": sum(o["sinks"][e]["created"] for o in outcomes[1:] for e in o["sinks"]),
                "posts": sum(posts.values()),
                "overlapping_write_phases": len(overlaps),
            })
    finally:
        stop(run)
