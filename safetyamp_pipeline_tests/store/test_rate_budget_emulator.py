"""Two SafetyAmp clients in separate processes, one token, against the sandbox emulator's own
per-token sliding-window limiter: with the shared budget in the sync store the server answers no
429; with a budget per process (the control) it does."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient
from safetyamp_pipeline.sandbox.runtime import start_sandbox
from safetyamp_pipeline.sandbox.server import RateLimitDecision, SlidingWindowRateLimiter
from safetyamp_pipeline.store.rate_budget import SharedRateBudget
from safetyamp_pipeline_tests.store.conftest import StoreTarget

# The emulator's threads run in this process: children are spawned, not forked.
CTX = multiprocessing.get_context("spawn")
RATE, WINDOW, PER_CLIENT = 5, 1.0, 10


class CountingLimiter(SlidingWindowRateLimiter):
    def __init__(self) -> None:
        super().__init__(RATE, WINDOW)
        self.rejected = 0

    def check(self, key: str) -> RateLimitDecision:
        decision = super().check(key)
        self.rejected += not decision.allowed
        return decision


def _client_process(env: dict[str, str], target: StoreTarget | None, start: Any, out: Any) -> None:
    token = env["SAFETYAMP_TOKEN"]
    limiter = SharedRateBudget(target.url, token, RATE, WINDOW, schema=target.schema) if target else None
    client = SafetyAmpClient(
        env["SAFETYAMP_API_URL"], token, env["SAFETYAMP_FQDN"],
        requests_per_window=RATE, window_seconds=WINDOW, limiter=limiter,
    )
    start.wait()
    for _ in range(PER_CLIENT):
        client.list("roles")  # one page of an empty list: one request
    out.put(client.stats.rate_limited_responses)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[Any, CountingLimiter]]:
    sandbox = start_sandbox(tmp_path / "sandbox", rate_limit=None)
    limiter = CountingLimiter()
    sandbox.safetyamp.rate_limiter = limiter
    try:
        yield sandbox, limiter
    finally:
        sandbox.stop()


def _run_two_clients(env: dict[str, str], target: StoreTarget | None) -> list[int]:
    start, out = CTX.Barrier(2), CTX.Queue()
    procs = [CTX.Process(target=_client_process, args=(env, target, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    seen = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return seen


def _server_total(env: dict[str, str]) -> int:
    return requests.get(f"{env['SAFETYAMP_API_URL']}/__sandbox/requests", timeout=10).json()["total"]


def test_two_clients_in_two_processes_sharing_the_store_budget_get_no_429(
    emulator: tuple[Any, CountingLimiter], store_target: StoreTarget
) -> None:
    sandbox, limiter = emulator
    seen_by_clients = _run_two_clients(sandbox.env, store_target)
    assert limiter.rejected == 0
    assert seen_by_clients == [0, 0]
    assert _server_total(sandbox.env) == 2 * PER_CLIENT  # no retries: every request was answered at once


def test_control_two_clients_with_a_budget_each_are_answered_429(emulator: tuple[Any, CountingLimiter]) -> None:
    sandbox, limiter = emulator
    seen_by_clients = _run_two_clients(sandbox.env, None)
    assert limiter.rejected > 0
    assert sum(seen_by_clients) == limiter.rejected
