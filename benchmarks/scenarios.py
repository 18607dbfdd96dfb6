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

from benchmarks.churn import apply_churn
from benchmarks.common import churn_result, initial_result, no_drift_result, ratio, vista_path
from benchmarks.core_work import measure_core
from benchmarks.limited import back_to_back, limited_churn
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

LEGACY_EMPLOYEES = 1400
SEED = 7
SCALE_EMPLOYEES, SCALE_JOBS, SCALE_VEHICLES = 20_000, 5_000, 800
# --quick: the scale scenarios' code paths on a small data set (numbers not comparable, not published).
QUICK_SCALE = (2_000, 500, 80)
REPO = Path(__file__).resolve().parent.parent

Progress = Callable[[str], None]


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
        "ratio": ratio(sum(safetyamp.values()), 0),
    }


def repeated_nochange(run: SandboxRun, name: str, repeats: int, progress: Progress) -> dict[str, Any]:
    """``repeats`` nochange runs, each followed by a measurement of the core work; the row holds
    the median wall and CPU and the largest peak, ``repeats`` every number (shared machine)."""
    runs = []
    for n in range(repeats):
        progress(f"{name} {n + 1}/{repeats}")
        nochange = no_drift_result(run, name, read_needed=False)
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


def legacy_scale(workdir: Path, progress: Progress, repeats: int, *, cold: bool = True) -> list[dict[str, Any]]:
    """initial, nochange (warm and cold), churn1, reconcile and the rate-limited runs."""
    sandbox, run = start_run(workdir, employees=LEGACY_EMPLOYEES, seed=SEED)
    results: list[dict[str, Any]] = []
    try:
        progress("legacy scale: initial sync")
        results.append(initial_result(run, "initial"))
        results.append(repeated_nochange(run, "nochange", repeats, progress))
        if cold:
            progress("legacy scale: nochange in a fresh process")
            results.append(cold_nochange(run, workdir))
        progress("legacy scale: churn1")
        churn = apply_churn(vista_path(run), run.state(), share=0.01, round_no=1)
        results.append(churn_result(run, "churn1", churn))
        progress("legacy scale: reconcile")
        results.append(no_drift_result(run, "reconcile", "safetyamp_reconcile", read_needed=True))
        progress("legacy scale: churn1 at the rate limit")
        results.append(limited_churn(run, "churn1_limited", 0.01, round_no=2))
        progress("legacy scale: churn10 at the rate limit (pacing beyond one window)")
        results.append(limited_churn(run, "churn10_limited", 0.10, round_no=3))
        progress("legacy scale: back to back at the rate limit (a sync filling two windows, then a reconcile)")
        results.append(back_to_back(run, round_no=4))
    finally:
        run.instance.dispose()
        sandbox.stop()
    return results


def scale(
    workdir: Path, progress: Progress, repeats: int, size: tuple[int, int, int] = (SCALE_EMPLOYEES, SCALE_JOBS, SCALE_VEHICLES)
) -> list[dict[str, Any]]:
    """20,000 employees: initial, then ``repeats`` nochange runs and core measurements."""
    employees, jobs, vehicles = size
    sandbox, run = start_run(workdir, employees, SEED, jobs=jobs, vehicles=vehicles)
    results: list[dict[str, Any]] = []
    try:
        progress(f"scale20k: initial sync ({employees:,} employees, {jobs:,} jobs, {vehicles} vehicles)")
        results.append(initial_result(run, "scale20k_initial"))
        results.append(repeated_nochange(run, "scale20k_nochange", repeats, progress))
    finally:
        run.instance.dispose()
        sandbox.stop()
    return results
