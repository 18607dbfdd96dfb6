"""The benchmark's table, its targets (checked against the measured numbers) and the machine."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

LEGACY_NOCHANGE_WALL = 10.0
SCALE_NOCHANGE_WALL = 30.0
SCALE_INITIAL_WALL = 60.0
SCALE_CORE_CPU = 1.0
SCALE_CORE_PEAK_MB = 400.0
MAX_RATIO = 1.05
PACE_TOLERANCE = 0.05
MIN_BUDGET_USE = 0.95


def machine() -> dict[str, Any]:
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
            memory_gb = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _by(results: Sequence[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in results if r["scenario"] == name), None)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of the issues with the measured number and whether it holds. ``kind`` is
    ``count`` (request counts: deterministic) or ``timing`` (wall/CPU: depends on the machine);
    both count for the exit status. ``measured`` is always a number (DESIGN §6)."""
    checks: list[dict[str, Any]] = []

    def add(target: str, measured: float | int | None, ok: bool, kind: str, **extra: Any) -> None:
        value = measured if isinstance(measured, int | float) else 0
        checks.append({"target": target, "measured": value, "ok": bool(ok) and measured is not None, "kind": kind, **extra})

    def exact_and_clean(name: str, result: dict[str, Any]) -> None:
        wrong = result["unexpected_count"] + result["missed_count"]
        add(f"{name}: 0 unexpected and 0 missed records", wrong, wrong == 0, "count",
            unexpected=result["unexpected_count"], missed=result["missed_count"])

    if nochange := _by(results, "nochange"):
        add("nochange: 0 SafetyAmp requests (every repeat)", nochange["safetyamp_requests_max"],
            nochange["safetyamp_requests_max"] == 0, "count")
        add("nochange: 0 Samsara driver look-ups (every repeat)", nochange["driver_lookups_max"],
            nochange["driver_lookups_max"] == 0, "count")
        add(f"nochange: run wall <= {LEGACY_NOCHANGE_WALL:g} s (median, warm process)", nochange["wall_seconds"],
            nochange["wall_seconds"] <= LEGACY_NOCHANGE_WALL, "timing")
    if cold := _by(results, "nochange_cold"):
        add("nochange_cold: 0 SafetyAmp requests", cold["safetyamp_requests"], cold["safetyamp_requests"] == 0, "count")
        add(f"nochange_cold: run wall <= {LEGACY_NOCHANGE_WALL:g} s", cold["wall_seconds"],
            cold["wall_seconds"] <= LEGACY_NOCHANGE_WALL, "timing")
    for name in ("initial", "reconcile", "scale20k_initial", "back_to_back_limited"):
        if result := _by(results, name):
            add(f"{name}: ratio <= {MAX_RATIO} (requests / designed minimum)", result["ratio"],
                result["ratio"] is not None and result["ratio"] <= MAX_RATIO, "count",
                requests=result["safetyamp_requests"], minimum=result["minimum_requests"])
    for name in ("churn1", "churn1_limited", "churn10_limited"):
        if churn := _by(results, name):
            add(f"{name}: requests = designed changed records", churn["safetyamp_requests"],
                churn["safetyamp_requests"] == churn["minimum_requests"], "count", minimum=churn["minimum_requests"])
    for name in ("initial", "churn1", "reconcile", "churn1_limited", "churn10_limited", "back_to_back_limited", "scale20k_initial"):
        if result := _by(results, name):
            exact_and_clean(name, result)
    if initial := _by(results, "scale20k_initial"):
        add(f"scale20k_initial: wall <= {SCALE_INITIAL_WALL:g} s", initial["wall_seconds"],
            initial["wall_seconds"] <= SCALE_INITIAL_WALL, "timing")
    if scale := _by(results, "scale20k_nochange"):
        add("scale20k_nochange: 0 SafetyAmp requests (every repeat)", scale["safetyamp_requests_max"],
            scale["safetyamp_requests_max"] == 0, "count")
        add("scale20k_nochange: 0 Samsara driver look-ups (every repeat)", scale["driver_lookups_max"],
            scale["driver_lookups_max"] == 0, "count")
        add(f"scale20k: core CPU <= {SCALE_CORE_CPU:.1f} s", scale["core"]["cpu_seconds"],
            scale["core"]["cpu_seconds"] <= SCALE_CORE_CPU, "timing", statistic="median of the nochange repeats")
        add(f"scale20k: core peak <= {SCALE_CORE_PEAK_MB:g} MB", scale["core"]["peak_mb"],
            scale["core"]["peak_mb"] <= SCALE_CORE_PEAK_MB, "timing", statistic="largest of the repeats")
        add(f"scale20k_nochange: run wall <= {SCALE_NOCHANGE_WALL:g} s (median)", scale["wall_seconds"],
            scale["wall_seconds"] <= SCALE_NOCHANGE_WALL, "timing")
    for name in ("churn1_limited", "churn10_limited", "back_to_back_limited"):
        if limited := _by(results, name):
            add(f"{name}: 0 responses 429", limited["responses_429"], limited["responses_429"] == 0, "count")
    limited = _by(results, "churn1_limited")
    if limited and limited["safetyamp_requests"] <= limited["limit"]:
        # Fewer requests than one window allows: any limiter wait would be budget wasted.
        add("churn1_limited: fits one window, so no limiter wait", limited["rate_limit_wait_seconds"],
            limited["rate_limit_wait_seconds"] < 0.5, "timing")
    if limited := _by(results, "churn10_limited"):
        ratio = limited["phase_to_paced"]
        add(f"churn10_limited: SafetyAmp phase within {PACE_TOLERANCE:.0%} of requests/60 windows", ratio,
            ratio is not None and abs(ratio - 1) <= PACE_TOLERANCE, "timing")
    if both := _by(results, "back_to_back_limited"):
        gap, window = both["gap_sync_to_reconcile_seconds"], both["window_seconds"]
        add(f"back_to_back_limited: the reconcile starts in the sync's last window (< {window:g} s)", gap,
            gap is not None and gap < window, "timing")
        add(f"back_to_back_limited: budget use >= {MIN_BUDGET_USE:.0%} when work is waiting", both["budget_use"],
            both["budget_use"] is not None and both["budget_use"] >= MIN_BUDGET_USE, "timing",
            held_requests=both["held_requests"])
    return checks


COLUMNS = (
    ("scenario", lambda r: r["scenario"]),
    ("SA req", lambda r: r["safetyamp_requests"]),
    ("by method", lambda r: " ".join(f"{m}:{n}" for m, n in r.get("safetyamp_by_method", {}).items()) or "-"),
    ("min", lambda r: r.get("minimum_requests")),
    ("ratio", lambda r: r.get("ratio")),
    ("unexp/miss", lambda r: f"{r['unexpected_count']}/{r['missed_count']}" if "unexpected_count" in r else None),
    ("Samsara", lambda r: r.get("samsara_requests", sum(r.get("samsara_by_route", {}).values()))),
    ("Graph", lambda r: r.get("graph_requests")),
    ("Vista q", lambda r: r.get("vista_queries")),
    ("wall s", lambda r: r.get("wall_seconds")),
    ("CPU s", lambda r: r.get("process_cpu_seconds")),
    ("core CPU s", lambda r: r.get("core", {}).get("cpu_seconds")),
    ("core MB", lambda r: r.get("core", {}).get("peak_mb")),
    ("RL wait s", lambda r: r.get("rate_limit_wait_seconds")),
    ("429s", lambda r: r.get("responses_429")),
)


def table(results: Sequence[dict[str, Any]]) -> str:
    rows = [[name for name, _ in COLUMNS]]
    rows += [[_fmt(get(r)) for _, get in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets_text(checks: Sequence[dict[str, Any]]) -> str:
    return "\n".join(
        f"  [{'ok' if c['ok'] else 'MISS'}] {c['target']}: {_fmt(c['measured'], 3)}{' (timing)' if c['kind'] == 'timing' else ''}"
        for c in checks
    )


def notes(results: Sequence[dict[str, Any]]) -> str:
    lines = []
    for name in ("nochange", "scale20k_nochange"):
        if r := _by(results, name):
            rep = r["repeats"]
            lines.append(
                f"{name} x{len(rep['wall_seconds'])}: run wall best {rep['wall_best']:.2f} s, median {rep['wall_median']:.2f} s "
                f"(all: {', '.join(f'{w:.2f}' for w in rep['wall_seconds'])}); process CPU during the runs "
                f"{', '.join(f'{c:.2f}' for c in rep['process_cpu_seconds'])} s; core CPU best {rep['core_cpu_best']:.2f} s, "
                f"median {rep['core_cpu_median']:.2f} s; core peak {rep['core_peak_mb_max']:.1f} MB"
            )
            steps = r["core"].get("cpu_seconds_by_step", {})
            lines.append(f"  core CPU by step (last run): {', '.join(f'{k} {v:.2f}' for k, v in steps.items())}")
    if cold := _by(results, "nochange_cold"):
        lines.append(f"nochange in a fresh process: Dagster run {cold['wall_seconds']:.2f} s, whole process "
                     f"(imports + definitions + run) {cold['process_wall_seconds']:.2f} s")
    if r := _by(results, "back_to_back_limited"):
        lines.append(
            f"back_to_back_limited: {r['safetyamp_requests']} requests ({r['runs']['sync']['safetyamp_requests']} sync, "
            f"{r['runs']['reconcile']['safetyamp_requests']} reconcile) at {r['rate_limit']}: reconcile's first request ready "
            f"{_fmt(r['gap_sync_to_reconcile_seconds'])} s after the sync's last, reconcile limiter wait "
            f"{r['reconcile_wait_seconds']:.2f} s, {r['held_requests']} requests held, budget use while held "
            f"{_fmt(r['budget_use'], 3)} (mean gap to the request {r['limit']} before: {_fmt(r['mean_gap_seconds'], 3)} s), "
            f"429s {r['responses_429']}"
        )
    for name in ("churn1_limited", "churn10_limited"):
        if r := _by(results, name):
            lines.append(
                f"{name}: {r['safetyamp_requests']} requests at {r['rate_limit']}: SafetyAmp phase "
                f"{r['safetyamp_phase_seconds']:.2f} s, limiter wait {r['rate_limit_wait_seconds']:.2f} s, "
                f"requests/60 windows = {r['expected_paced_seconds']:.2f} s, full-bucket schedule "
                f"{r['expected_bucket_seconds']:.2f} s, 429s {r['responses_429']}"
            )
    return "\n".join(lines)
