"""Through the real jobs: two runs inside one rate window spend one budget (issue 20.1).

Each run is a fresh set of resources and clients (as a new pod would be); only the sync store is
shared. The emulator's own per-token sliding window is the judge: it must answer no 429.
Needs `SafetyAmpResource` to build its client with `store.rate_budget.shared_budget_from_env`
(clients/resources.py); with a budget per run the second reconcile is answered 429.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safetyamp_pipeline.sandbox.server import RateLimitDecision, SlidingWindowRateLimiter
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

LIMIT, WINDOW = 10, 15.0


class CountingLimiter(SlidingWindowRateLimiter):
    def __init__(self) -> None:
        super().__init__(LIMIT, WINDOW)
        self.rejected = 0
        self.accepted = 0

    def check(self, key: str) -> RateLimitDecision:
        decision = super().check(key)
        if decision.allowed:
            self.accepted += 1
        else:
            self.rejected += 1
        return decision


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[SandboxRun]:
    sandbox, run = start_run(tmp_path)
    try:
        assert run.sync().success
        yield run
    finally:
        run.instance.dispose()
        sandbox.stop()


@pytest.mark.slow
def test_two_reconciles_in_one_window_wait_for_the_shared_budget_instead_of_getting_429(synced: SandboxRun) -> None:
    limiter = CountingLimiter()
    synced.sandbox.safetyamp.rate_limiter = limiter
    synced.env.update(SAFETYAMP_RATE_LIMIT=str(LIMIT), SAFETYAMP_RATE_WINDOW_SECONDS=str(WINDOW))
    first = synced.sync("safetyamp_reconcile")
    second = synced.sync("safetyamp_reconcile")
    assert first.success and second.success, (first.failure, second.failure)
    # Two full reads need more than one window's budget, so the second run had to wait its turn.
    assert limiter.accepted > LIMIT
    assert limiter.rejected == 0
    second_wait = sum(float(s.get("rate_limit_wait_seconds", 0.0)) for s in second.sinks.values())
    assert second_wait > 0
