"""``make bench``: run the scenarios, print the table and the targets, write results/latest.json;
a full run also rewrites the committed record ``results/README.md``.

    python -m benchmarks.run [--quick | --skip-scale] [--repeats N] [--keep DIR] [--output FILE]

``--quick`` proves the code paths in a few minutes (nochange once, no cold process, the scale
scenarios on 2,000 employees): its numbers are not the targets' and are never published.
Dagster's own run log (DEBUG, very long) goes to ``dagster.log`` in the work directory (kept with
``--keep DIR``), not the terminal. Exit status 1 when any target is missed (counts and timings).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import publish, report, scenarios

RESULTS = Path(__file__).resolve().parent / "results"


def _progress(started: float) -> scenarios.Progress:
    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", file=sys.__stdout__, flush=True)

    return say


def run(workdir: Path, *, skip_scale: bool, repeats: int, quick: bool) -> dict[str, Any]:
    started = time.monotonic()
    say = _progress(started)
    info = report.machine()
    results: list[dict[str, Any]] = []
    with open(workdir / "dagster.log", "w", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        legacy = workdir / "legacy"
        legacy.mkdir()
        results += scenarios.legacy_scale(legacy, say, repeats, cold=not quick)
        if not skip_scale:
            scale = workdir / "scale20k"
            scale.mkdir()
            size = scenarios.QUICK_SCALE if quick else (scenarios.SCALE_EMPLOYEES, scenarios.SCALE_JOBS, scenarios.SCALE_VEHICLES)
            results += scenarios.scale(scale, say, repeats, size)
    return {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "quick": quick,
        "full": not quick and not skip_scale,
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.monotonic() - started, 1),
        "scenarios": results,
        "targets": report.targets(results),
    }


def _commit() -> str:
    """HEAD, marked ``+changes`` when the work tree differs from it (what was measured)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" +changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-scale", action="store_true", help="skip the 20,000-employee scenario")
    parser.add_argument("--quick", action="store_true", help="prove the code paths only (small, not published)")
    parser.add_argument("--repeats", type=int, default=None, help="nochange runs per scale (default 3, --quick 1)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    options = {"skip_scale": args.skip_scale, "repeats": repeats, "quick": args.quick}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        outcome = run(args.keep, **options)
    else:
        with tempfile.TemporaryDirectory(prefix="safetyamp-bench-") as tmp:
            outcome = run(Path(tmp), **options)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(outcome, indent=2, default=str), encoding="utf-8")
    m = outcome["machine"]
    print(f"\nMachine: {m['nproc']} CPUs, {m['memory_gb']} GB, Python {m['python']}, load {m['load_average_at_start']}")
    print(report.table(outcome["scenarios"]))
    print()
    print(report.notes(outcome["scenarios"]))
    print("\nTargets:")
    print(report.targets_text(outcome["targets"]))
    print(f"\nTotal {outcome['total_seconds']:.0f} s; results in {args.output}")
    if outcome["full"] and repeats >= 3:
        command = " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
        print(f"Published to {publish.publish(outcome, command)} (commit it)")
    else:
        print("Not a full run: results/README.md left as it is")
    return 0 if all(t["ok"] for t in outcome["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
