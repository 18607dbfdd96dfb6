"""The committed record of the latest full ``make bench``: ``benchmarks/results/README.md``,
written by the bench itself (never edited by hand) from the run's outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import report

PUBLISHED = Path(__file__).resolve().parent / "results" / "README.md"


def render(outcome: dict[str, Any], command: str) -> str:
    m = outcome["machine"]
    missed = [t for t in outcome["targets"] if not t["ok"]]
    lines = [
        "# Latest full benchmark run",
        "",
        "Written by `python -m benchmarks.run` at the end of a full run; do not edit by hand. "
        "Method and scenarios: `benchmarks/README.md`.",
        "",
        f"* Run: {outcome['written_at']} (`{command}`), {outcome['total_seconds']:.0f} s in all, "
        f"code at commit {outcome.get('commit', 'unknown')}",
        f"* Machine: {m['nproc']} CPUs, {m['memory_gb']} GB, Python {m['python']}, {m['platform']}",
        f"* Load average at start: {', '.join(str(x) for x in m['load_average_at_start'])}; "
        f"at end: {', '.join(str(x) for x in outcome.get('load_average_at_end', []))}",
        f"* Targets: {len(outcome['targets']) - len(missed)} of {len(outcome['targets'])} hold"
        + (f"; missed: {', '.join(t['target'] for t in missed)}" if missed else ""),
        "",
        "```",
        report.table(outcome["scenarios"]),
        "```",
        "",
        "```",
        report.notes(outcome["scenarios"]),
        "```",
        "",
        "## Targets",
        "",
        "| target | measured | kind | holds |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {report._fmt(t['measured'], 3)} | {t['kind']} | {'yes' if t['ok'] else '**no**'} |"
        for t in outcome["targets"]
    ]
    return "\n".join(lines) + "\n"


def publish(outcome: dict[str, Any], command: str, path: Path = PUBLISHED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(outcome, command), encoding="utf-8")
    return path
