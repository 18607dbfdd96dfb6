"""The benchmark scenarios, each on a real sandbox (emulators over HTTP, SQLite store, Dagster
instance) driven through ``run_job`` exactly as ``make sync`` does."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.churn import Churn, apply_churn
from benchmarks.core_work import measure_core
from benchmarks.measure import (
    CountingRateLimiter,
    RunMeasure,
    measured_sync,
    minimum_reads,
    server_diff,
)
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

LEGACY_EMPLOYEES = 1400
SEED = 7
SCALE_EMPLOYEES, SCALE_JOBS, SCALE_VEHICLES = 20_000, 5_000, 800
# The real limit is 60 requests per 60 s; the limited scenarios run it 10x faster.
LIMIT, LIMIT_WINDOW = 60, 6.0
REPO = Path(__file__).resolve().parent.parent

Progress = Callable[[str], None]


def _ratio(requests: int, minimum: int) -> float | None:
    if minimum == 0:
        return 1.0 if requests == 0 else None
    return round(requests / minimum, 3)


def _result(name: str, measure: RunMeasure, minimum: int, **extra: Any) -> dict[str, Any]:
    if not measure.success:
        raise RuntimeError(f"scenario {name}: the sync failed: {measure.failure}")
    return {
        "scenario": name,
        **measure.as_dict(),
        "minimum_requests": minimum,
        "ratio": _ratio(measure.safetyamp_total, minimum),
        **extra,
    }


def _sync_against_minimum(run: SandboxRun, name: str, job: str = "safetyamp_sync", *, read_needed: bool) -> dict[str, Any]:
    """Run ``job``; the minimum is the writes SafetyAmp's state shows were needed, plus a full
    read at the maximum page size when the scenario needs one."""
    before = run.state()
    measure = measured_sync(run, job)
    diff = server_diff(before, run.state())
    reads = minimum_reads(before) if read_needed else 0
    return _result(
        name, measure, diff.writes + reads, minimum_writes=diff.writes, minimum_reads=reads,
        server_created=diff.created, server_changed=diff.changed,
    )


def _churn_result(run: SandboxRun, name: str, churn: Churn) -> dict[str, Any]:
    before = run.state()
    measure = measured_sync(run)
    diff = server_diff(before, run.state())
    changed_keys = {k for keys in diff.changed_keys.values() for k in keys}
    expected_keys = churn.user_keys | {j.strip() for j in churn.new_jobs}
    return _result(
        name, measure, churn.expected_writes, churn=churn.as_dict(), minimum_writes=churn.expected_writes,
        server_records_changed=diff.writes, unexpected_records=sorted(changed_keys - expected_keys)[:20],
        untouched_changes=sorted(expected_keys - changed_keys)[:20],
    )


def cold_nochange(run: SandboxRun, workdir: Path) -> dict[str, Any]:
    """A ``nochange`` sync in a fresh Python process (imports and definitions included)."""
    env_path = workdir / "cold_env.json"
    env_path.write_text(json.dumps(run.env), encoding="utf-8")
    run.reset_requests()
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.cold", str(env_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    process_wall = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"cold nochange run failed: {completed.stdout[-2000:]} {completed.stderr[-2000:]}")
    reported = json.loads(completed.stdout.strip().splitlines()[-1])
    safetyamp = run.requests("safetyamp")["by_route"]
    return {
        "scenario": "nochange_cold",
        "success": reported["success"],
        "wall_seconds": reported["run_wall_seconds"],
        "process_wall_seconds": round(process_wall, 3),
        "safetyamp_requests": sum(safetyamp.values()),
        "safetyamp_by_route": safetyamp,
        "samsara_by_route": run.requests("samsara")["by_route"],
        "minimum_requests": 0,
        "ratio": _ratio(sum(safetyamp.values()), 0),
    }


def limited_churn(run: SandboxRun, name: str, share: float, round_no: int) -> dict[str, Any]:
    """Churn with the emulator's limit ON and the client at the same limit (60 per 6 s)."""
    limiter = CountingRateLimiter(LIMIT, LIMIT_WINDOW)
    saved_env = dict(run.env)
    run.sandbox.safetyamp.rate_limiter = limiter
    run.env.update(SAFETYAMP_RATE_LIMIT=str(LIMIT), SAFETYAMP_RATE_WINDOW_SECONDS=str(LIMIT_WINDOW))
    try:
        churn = apply_churn(_vista_path(run), run.state(), share=share, round_no=round_no)
        result = _churn_result(run, name, churn)
    finally:
        run.sandbox.safetyamp.rate_limiter = None
        run.env.clear()
        run.env.update(saved_env)
    requests = result["safetyamp_requests"]
    api_phase = sum(float(s.get("seconds", 0.0)) for s in result["sinks"].values())
    # The spec's pace (requests / 60 per window) and the token bucket's: a full bucket sends the
    # first LIMIT requests at once, then LIMIT per window.
    paced = requests / LIMIT * LIMIT_WINDOW
    bucket = max(0, -(-requests // LIMIT) - 1) * LIMIT_WINDOW
    result.update(
        rate_limit=f"{LIMIT} per {LIMIT_WINDOW:g} s (emulator and client)",
        limit=LIMIT,
        window_seconds=LIMIT_WINDOW,
        responses_429=limiter.rejected,
        safetyamp_phase_seconds=round(api_phase, 3),
        expected_paced_seconds=round(paced, 3),
        expected_bucket_seconds=round(bucket, 3),
        phase_to_paced=round(api_phase / paced, 3) if paced else None,
    )
    return result


def _vista_path(run: SandboxRun) -> str:
    return run.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///")


def repeated_nochange(run: SandboxRun, name: str, repeats: int, progress: Progress) -> dict[str, Any]:
    """``repeats`` nochange runs, each followed by a measurement of the core work; the row holds
    the median wall and CPU and the largest peak, ``repeats`` every number (shared machine)."""
    runs = []
    for n in range(repeats):
        progress(f"{name} {n + 1}/{repeats}")
        nochange = _sync_against_minimum(run, name, read_needed=False)
        nochange["core"] = measure_core(run.env)
        runs.append(nochange)
    walls = [r["wall_seconds"] for r in runs]
    cpus = [r["core"]["cpu_seconds"] for r in runs]
    peaks = [r["core"]["peak_mb"] for r in runs]
    summary = dict(runs[-1])
    summary["repeats"] = {
        "wall_seconds": walls, "core_cpu_seconds": cpus, "core_peak_mb": peaks,
        "process_cpu_seconds": [r["process_cpu_seconds"] for r in runs],
        "wall_best": min(walls), "wall_median": statistics.median(walls),
        "core_cpu_best": min(cpus), "core_cpu_median": statistics.median(cpus),
        "core_peak_mb_max": max(peaks),
    }
    summary["safetyamp_requests_max"] = max(r["safetyamp_requests"] for r in runs)
    summary["driver_lookups_max"] = max(
        sum(n for route, n in r["samsara_by_route"].items() if "/fleet/drivers" in route) for r in runs
    )
    summary["wall_seconds"] = statistics.median(walls)
    summary["process_cpu_seconds"] = statistics.median(r["process_cpu_seconds"] for r in runs)
    summary["core"] = {**runs[-1]["core"], "cpu_seconds": statistics.median(cpus), "peak_mb": max(peaks)}
    return summary


def legacy_scale(workdir: Path, progress: Progress, repeats: int) -> list[dict[str, Any]]:
    """initial, nochange (warm and cold), churn1, reconcile and the rate-limited churn runs."""
    sandbox, run = start_run(workdir, employees=LEGACY_EMPLOYEES, seed=SEED)
    results: list[dict[str, Any]] = []
    try:
        progress("legacy scale: initial sync")
        results.append(_sync_against_minimum(run, "initial", read_needed=True))
        results.append(repeated_nochange(run, "nochange", repeats, progress))
        progress("legacy scale: nochange in a fresh process")
        results.append(cold_nochange(run, workdir))
        progress("legacy scale: churn1")
        churn = apply_churn(_vista_path(run), run.state(), share=0.01, round_no=1)
        results.append(_churn_result(run, "churn1", churn))
        progress("legacy scale: reconcile")
        results.append(_sync_against_minimum(run, "reconcile", "safetyamp_reconcile", read_needed=True))
        progress("legacy scale: churn1 at the rate limit")
        results.append(limited_churn(run, "churn1_limited", 0.01, round_no=2))
        progress("legacy scale: churn10 at the rate limit (pacing beyond one window)")
        results.append(limited_churn(run, "churn10_limited", 0.10, round_no=3))
    finally:
        run.instance.dispose()
        sandbox.stop()
    return results


def _start_scale_run(workdir: Path) -> tuple[Any, SandboxRun]:
    """Like ``start_run`` (same environment), on a data set with the scale scenario's job and
    vehicle counts (``start_run`` only sizes by employees)."""
    return start_run(workdir, SCALE_EMPLOYEES, SEED, jobs=SCALE_JOBS, vehicles=SCALE_VEHICLES)


def scale(workdir: Path, progress: Progress, repeats: int) -> list[dict[str, Any]]:
    """20,000 employees: initial, then ``repeats`` nochange runs and core measurements."""
    sandbox, run = _start_scale_run(workdir)
    results: list[dict[str, Any]] = []
    try:
        progress(f"scale20k: initial sync ({SCALE_EMPLOYEES:,} employees, {SCALE_JOBS:,} jobs, {SCALE_VEHICLES} vehicles)")
        initial = _sync_against_minimum(run, "scale20k_initial", read_needed=True)
        results.append(initial)
        results.append(repeated_nochange(run, "scale20k_nochange", repeats, progress))
    finally:
        run.instance.dispose()
        sandbox.stop()
    return results
