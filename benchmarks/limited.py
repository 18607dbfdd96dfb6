"""The scenarios with SafetyAmp's rate limit ON: the emulator's own sliding window (counting its
429s) and the client configured with the same limit, 60 requests per 6 s (the real 60/min, 10x
faster; 60 per 15 s for back_to_back_limited, see BACK_TO_BACK_WINDOW)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.churn import apply_churn
from benchmarks.common import churn_result, ratio, vista_path
from benchmarks.design import Design, compare, full_read_requests
from benchmarks.measure import CountingRateLimiter, LimiterWaits, budget_use, measured_sync, server_diff
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun

LIMIT, LIMIT_WINDOW = 60, 6.0
# back_to_back_limited: the real limit 4x faster. From a sync's last request to the next run's
# first SafetyAmp read there are 6-8 s here (run end, run start, sources and desired state), time
# that does not scale down with the limit: at 60 per 6 s the reconcile would start in a fresh
# window and test nothing.
BACK_TO_BACK_WINDOW = 15.0


def _describe(window: float) -> str:
    return f"{LIMIT} per {window:g} s (emulator and client)"

# Hires, terminations and new jobs of every churn (benchmarks.churn defaults).
FIXED_CHURN_WRITES = 2 + 2 + 1


@contextmanager
def rate_limited(run: SandboxRun, window: float = LIMIT_WINDOW) -> Iterator[CountingRateLimiter]:
    """The limit ON for the block, starting on a full budget: one window of quiet first, so
    nothing sent before the block counts against it (on the server or in the shared budget)."""
    limiter = CountingRateLimiter(LIMIT, window)
    saved_env = dict(run.env)
    time.sleep(window)
    run.sandbox.safetyamp.rate_limiter = limiter
    run.env.update(SAFETYAMP_RATE_LIMIT=str(LIMIT), SAFETYAMP_RATE_WINDOW_SECONDS=str(window))
    try:
        yield limiter
    finally:
        run.sandbox.safetyamp.rate_limiter = None
        run.env.clear()
        run.env.update(saved_env)


def limited_churn(run: SandboxRun, name: str, share: float, round_no: int) -> dict[str, Any]:
    """Churn with the limit ON; the SafetyAmp phase is compared with the spec's pace."""
    with rate_limited(run) as limiter:
        churn = apply_churn(vista_path(run), run.state(), share=share, round_no=round_no)
        result = churn_result(run, name, churn)
    requests = result["safetyamp_requests"]
    api_phase = sum(float(s.get("seconds", 0.0)) for s in result["sinks"].values())
    # The spec's pace (requests / 60 per window) and the token bucket's: a full bucket sends the
    # first LIMIT requests at once, then LIMIT per window.
    paced = requests / LIMIT * LIMIT_WINDOW
    bucket = max(0, -(-requests // LIMIT) - 1) * LIMIT_WINDOW
    result.update(
        rate_limit=_describe(LIMIT_WINDOW),
        limit=LIMIT,
        window_seconds=LIMIT_WINDOW,
        responses_429=limiter.rejected,
        safetyamp_phase_seconds=round(api_phase, 3),
        expected_paced_seconds=round(paced, 3),
        expected_bucket_seconds=round(bucket, 3),
        phase_to_paced=round(api_phase / paced, 3) if paced else None,
    )
    return result


def back_to_back(run: SandboxRun, round_no: int) -> dict[str, Any]:
    """A sync whose writes fill two windows exactly, then at once a reconcile (a full read), in the
    same window: the reconcile finds the budget spent and must wait for it, not get 429s. Nothing
    runs between the two (the server state is compared over both: the reconcile must write nothing)."""
    with rate_limited(run, BACK_TO_BACK_WINDOW) as limiter, LimiterWaits().capturing() as waits:
        churn = apply_churn(vista_path(run), run.state(), edits=2 * LIMIT - FIXED_CHURN_WRITES, round_no=round_no)
        before = run.state()
        sync = measured_sync(run)
        reconcile = measured_sync(run, "safetyamp_reconcile")
        after = run.state()
    for measure in (sync, reconcile):
        if not measure.success:
            raise RuntimeError(f"scenario back_to_back_limited: a run failed: {measure.failure}")
    # From the sync's last request to the moment the reconcile's first was ready (before any limiter
    # wait): "the same window" is about when the work came, not when the limiter let it go.
    seen, sent_by_sync = limiter.seen_at, sync.safetyamp_total  # every request, 429s included
    gap = None
    if 0 < sent_by_sync < len(seen):
        last_of_sync = seen[sent_by_sync - 1]
        gap = waits.ready_at(last_of_sync, seen[sent_by_sync]) - last_of_sync
    keys = {f"users:{k}" for k in churn.user_keys} | {f"sites:{j.strip()}" for j in churn.new_jobs}
    design = Design(writes_by_entity={"churn": churn.expected_writes}, keys=keys, reads=full_read_requests(after))
    requests = sync.safetyamp_total + reconcile.safetyamp_total
    runs = {"sync": sync.as_dict(), "reconcile": reconcile.as_dict()}
    return {
        "scenario": "back_to_back_limited",
        "success": True,
        "safetyamp_requests": requests,
        "safetyamp_by_method": _sum_counts(*(r["safetyamp_by_method"] for r in runs.values())),
        "minimum_requests": design.requests,
        "minimum_writes": design.writes,
        "minimum_reads": design.reads,
        "ratio": ratio(requests, design.requests),
        **compare(keys, server_diff(before, after)),
        **{name: _sum_values(r[name] for r in runs.values()) for name in SUMMED},
        "responses_429": limiter.rejected,
        "rate_limit": _describe(BACK_TO_BACK_WINDOW),
        "limit": LIMIT,
        "window_seconds": BACK_TO_BACK_WINDOW,
        "churn": churn.as_dict(),
        "gap_sync_to_reconcile_seconds": round(gap, 3) if gap is not None else None,
        "reconcile_wait_seconds": runs["reconcile"]["rate_limit_wait_seconds"],
        **budget_use(limiter.accepted_at, waits.released_at, LIMIT, BACK_TO_BACK_WINDOW),
        "runs": runs,
    }


SUMMED = (
    "samsara_requests", "graph_requests", "vista_queries", "wall_seconds", "process_cpu_seconds", "rate_limit_wait_seconds",
)


def _sum_values(values: Iterable[float]) -> float:
    return round(sum(values), 3)


def _sum_counts(*counts: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for key, n in count.items():
            total[key] = total.get(key, 0) + n
    return dict(sorted(total.items()))
