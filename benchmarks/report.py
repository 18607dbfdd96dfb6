"""The benchmark's table, its targets (checked against the measured numbers) and the machine."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

LEGACY_NOCHANGE_WALL = 10.0
SCALE_NOCHANGE_WALL = 30.0
SCALE_CORE_CPU = 2.0
SCALE_CORE_PEAK_MB = 400.0
MAX_RATIO = 1.05
PACE_TOLERANCE = 0.05


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
    """Each target of the issue with the measured number and whether it holds. ``counted`` marks
    the deterministic (request-count) targets; the others are timings on a shared machine."""
    checks: list[dict[str, Any]] = []

    def add(target: str, measured: Any, ok: bool, counted: bool) -> None:
        checks.append({"target": target, "measured": measured, "ok": bool(ok), "counted": counted})

    if nochange := _by(results, "nochange"):
        add("nochange: 0 SafetyAmp requests (every repeat)", nochange["safetyamp_requests_max"],
            nochange["safetyamp_requests_max"] == 0, True)
        add("nochange: 0 Samsara driver look-ups (every repeat)", nochange["driver_lookups_max"],
            nochange["driver_lookups_max"] == 0, True)
        add(f"nochange: run wall <= {LEGACY_NOCHANGE_WALL:g} s (median, warm process)", nochange["wall_seconds"],
            nochange["wall_seconds"] <= LEGACY_NOCHANGE_WALL, False)
    if cold := _by(results, "nochange_cold"):
        add("nochange cold process: 0 SafetyAmp requests", cold["safetyamp_requests"], cold["safetyamp_requests"] == 0, True)
        add(f"nochange cold process: run wall <= {LEGACY_NOCHANGE_WALL:g} s", cold["wall_seconds"],
            cold["wall_seconds"] <= LEGACY_NOCHANGE_WALL, False)
    if churn := _by(results, "churn1"):
        add("churn1: requests = changed records (ratio 1.00)",
            f"{churn['safetyamp_requests']} / {churn['minimum_requests']}",
            churn["safetyamp_requests"] == churn["minimum_requests"] == churn["server_records_changed"], True)
    for name in ("initial", "reconcile", "scale20k_initial"):
        if result := _by(results, name):
            add(f"{name}: ratio <= {MAX_RATIO}", result["ratio"],
                result["ratio"] is not None and result["ratio"] <= MAX_RATIO, True)
    if scale := _by(results, "scale20k_nochange"):
        add("scale20k nochange: 0 SafetyAmp requests (every repeat)", scale["safetyamp_requests_max"],
            scale["safetyamp_requests_max"] == 0, True)
        add("scale20k nochange: 0 Samsara driver look-ups (every repeat)", scale["driver_lookups_max"],
            scale["driver_lookups_max"] == 0, True)
        add(f"scale20k: core CPU <= {SCALE_CORE_CPU:g} s (median)", scale["core"]["cpu_seconds"],
            scale["core"]["cpu_seconds"] <= SCALE_CORE_CPU, False)
        add(f"scale20k: core peak <= {SCALE_CORE_PEAK_MB:g} MB (largest)", scale["core"]["peak_mb"],
            scale["core"]["peak_mb"] <= SCALE_CORE_PEAK_MB, False)
        add(f"scale20k: nochange run wall <= {SCALE_NOCHANGE_WALL:g} s (median)", scale["wall_seconds"],
            scale["wall_seconds"] <= SCALE_NOCHANGE_WALL, False)
    for name in ("churn1_limited", "churn10_limited"):
        if limited := _by(results, name):
            add(f"{name}: 0 responses 429", limited["responses_429"], limited["responses_429"] == 0, True)
            add(f"{name}: requests = changed records", f"{limited['safetyamp_requests']} / {limited['minimum_requests']}",
                limited["safetyamp_requests"] == limited["minimum_requests"], True)
    limited = _by(results, "churn1_limited")
    if limited and limited["safetyamp_requests"] <= limited["limit"]:
        # Fewer requests than one window allows: any limiter wait would be budget wasted.
        add("churn1_limited: fits one window, so no limiter wait", limited["rate_limit_wait_seconds"],
            limited["rate_limit_wait_seconds"] < 0.5, False)
    if limited := _by(results, "churn10_limited"):
        ratio = limited["phase_to_paced"]
        add(f"churn10_limited: SafetyAmp phase within {PACE_TOLERANCE:.0%} of requests/60 windows", ratio,
            ratio is not None and abs(ratio - 1) <= PACE_TOLERANCE, False)
    return checks


COLUMNS = (
    ("scenario", lambda r: r["scenario"]),
    ("SA req", lambda r: r["safetyamp_requests"]),
    ("by method", lambda r: " ".join(f"{m}:{n}" for m, n in r.get("safetyamp_by_method", {}).items()) or "-"),
    ("min", lambda r: r.get("minimum_requests")),
    ("ratio", lambda r: r.get("ratio")),
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
        f"  [{'ok' if c['ok'] else 'MISS'}] {c['target']}: {_fmt(c['measured'], 3)}{'' if c['counted'] else ' (timing)'}"
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
    for name in ("churn1_limited", "churn10_limited"):
        if r := _by(results, name):
            lines.append(
                f"{name}: {r['safetyamp_requests']} requests at {r['rate_limit']}: SafetyAmp phase "
                f"{r['safetyamp_phase_seconds']:.2f} s, limiter wait {r['rate_limit_wait_seconds']:.2f} s, "
                f"requests/60 windows = {r['expected_paced_seconds']:.2f} s, full-bucket schedule "
                f"{r['expected_bucket_seconds']:.2f} s, 429s {r['responses_429']}"
            )
    return "\n".join(lines)
