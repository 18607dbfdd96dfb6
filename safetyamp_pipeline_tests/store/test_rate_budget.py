"""The shared SafetyAmp rate budget (store/rate_budget.py): one budget per token for every process.

The multi-process tests record the database time of every grant (read inside the grant's own
transaction) and count the grants in every window: at most `rate` per window of `per_seconds`,
whatever the machine's load.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import time
from collections.abc import Sequence

import pytest

from safetyamp_pipeline.clients.rate_limit import RateLimiter, TokenBucket
from safetyamp_pipeline.store.errors import StoreUnavailable
from safetyamp_pipeline.store.rate_budget import SharedRateBudget, budget_key, shared_budget_from_env
from safetyamp_pipeline_tests.store.conftest import StoreTarget

CTX = multiprocessing.get_context("fork")
RATE, WINDOW, PER_PROCESS = 5, 1.0, 8
TOKEN = "sandbox-token-Secret-123"


def most_in_any_window(stamps: Sequence[float], window: float) -> int:
    """The largest number of stamps in any window (t - window, t], as a sliding-window server counts."""
    ordered = sorted(stamps)
    most, first = 0, 0
    for i, t in enumerate(ordered):
        while ordered[first] <= t - window:
            first += 1
        most = max(most, i - first + 1)
    return most


def _spend_shared(target: StoreTarget, start, out) -> None:
    budget = SharedRateBudget(target.url, TOKEN, RATE, WINDOW, schema=target.schema)
    start.wait()
    grants = []
    for _ in range(PER_PROCESS):
        budget.acquire()
        grants.append(budget.last_granted_at)
        budget.mark_answered()
    budget.close()
    out.put(grants)


def _spend_own_bucket(start, out) -> None:
    bucket = TokenBucket(RATE, WINDOW)
    start.wait()
    grants = []
    for _ in range(PER_PROCESS):
        bucket.acquire()
        grants.append(time.time())
    out.put(grants)


def _two_processes(target, args_for) -> list[list[float]]:
    start, out = CTX.Barrier(2), CTX.Queue()
    procs = [CTX.Process(target=target, args=(*args_for, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def test_two_processes_on_one_store_never_exceed_the_budget_together(store_target: StoreTarget) -> None:
    first, second = _two_processes(_spend_shared, (store_target,))
    stamps = first + second
    assert len(stamps) == 2 * PER_PROCESS and None not in stamps
    assert most_in_any_window(stamps, WINDOW) <= RATE
    # 16 grants at 5 per window need at least three full windows after the first grant.
    ordered = sorted(stamps)
    assert ordered[-1] - ordered[0] >= 3 * WINDOW


def test_a_budget_per_process_overspends_which_is_what_the_shared_budget_prevents() -> None:
    first, second = _two_processes(_spend_own_bucket, ())
    assert most_in_any_window(first, WINDOW) <= RATE
    assert most_in_any_window(first + second, WINDOW) > RATE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def _fake_budget(target: StoreTarget, clock: FakeClock, rate: int = 60, per: float = 60.0) -> SharedRateBudget:
    return SharedRateBudget(target.url, TOKEN, rate, per, schema=target.schema, clock=clock, sleep=clock.sleep, margin=0.5)


def _paced(limiter_for, clock: FakeClock) -> list[float]:
    limiter = limiter_for(clock)
    rng = random.Random(5)
    stamps = []
    for _ in range(200):
        clock.now += rng.choice([0.0, 0.0, 0.1, 0.7, 2.0])  # the caller's own work between calls
        limiter.acquire()
        stamps.append(clock.now)
        limiter.mark_answered()
    return stamps


def test_no_window_holds_more_than_rate_grants_and_the_budget_is_used(store_target: StoreTarget) -> None:
    shared = _paced(lambda clock: _fake_budget(store_target, clock), FakeClock())
    assert most_in_any_window(shared, 60.0) <= 60
    assert shared[-1] - shared[0] >= 3 * 60.0
    # As fast as the in-process bucket on the same calls, but for the 0.5 s margin per ring round.
    local = _paced(lambda clock: TokenBucket(60, 60.0, clock=clock, sleep=clock.sleep), FakeClock())
    assert shared[-1] - shared[0] <= local[-1] - local[0] + 4 * 0.5 + 1e-6


def test_a_second_budget_object_on_the_same_store_sees_the_tokens_already_spent(store_target: StoreTarget) -> None:
    clock = FakeClock()
    sync = _fake_budget(store_target, clock, rate=3, per=10.0)
    assert isinstance(sync, RateLimiter) and isinstance(TokenBucket(1, 1.0), RateLimiter)
    for _ in range(3):
        assert sync.acquire() == 0.0
        sync.mark_answered()
    clock.now += 2.0
    reconcile = _fake_budget(store_target, clock, rate=3, per=10.0)  # the next run, a new process
    assert reconcile.available == 0
    assert reconcile.acquire() == pytest.approx(8.5)  # the first token is back 10 s after its 0.5 s-ahead stamp
    other_token = SharedRateBudget(store_target.url, "another-token", 3, 10.0, schema=store_target.schema, clock=clock)
    assert other_token.available == 3


def test_a_slow_answer_restamps_its_token_with_the_answer_time(store_target: StoreTarget) -> None:
    clock = FakeClock()
    budget = _fake_budget(store_target, clock, rate=1, per=10.0)
    budget.acquire()
    clock.now += 4.0  # the answer came back 4 s later: the server may have counted it that late
    budget.mark_answered()
    assert budget.acquire() == pytest.approx(10.0)


def test_the_token_is_never_stored_only_its_hash(tmp_path) -> None:
    path = tmp_path / "store.db"
    budget = SharedRateBudget(f"sqlite:///{path}", TOKEN, 2, 1.0)
    budget.acquire()
    budget.mark_answered()
    budget.close()
    with sqlite3.connect(path) as db:
        keys = [k for (k,) in db.execute("SELECT budget_key FROM sync_rate_budget")]
        rows = db.execute("SELECT * FROM sync_rate_budget_slots").fetchall()
    assert keys == [budget_key(TOKEN)] and len(keys[0]) == 64
    assert TOKEN not in repr(rows) and TOKEN not in repr(budget)
    for name in (path, path.with_name(path.name + "-wal")):
        if name.exists():
            assert TOKEN.encode() not in name.read_bytes()


def test_the_budget_lives_beside_the_sync_store_tables(store_target: StoreTarget) -> None:
    store = store_target.open()
    budget = SharedRateBudget(store_target.url, TOKEN, 2, 1.0, schema=store_target.schema)
    budget.acquire()
    reopened = store_target.open()  # the store still opens (its own schema check) with the budget tables present
    reopened.close()
    store.close()
    budget.close()


def test_shared_budget_from_env_uses_the_store_the_assets_use(tmp_path) -> None:
    env = {"SAFETYAMP_STORE_URL": f"sqlite:///{tmp_path / 'assets-store.db'}"}
    budget = shared_budget_from_env(TOKEN, 60, 60.0, env)
    assert budget.url == env["SAFETYAMP_STORE_URL"]
    home = {"DAGSTER_HOME": str(tmp_path / "home")}
    assert shared_budget_from_env(TOKEN, 60, 60.0, home).url.endswith("home/safetyamp_store.db")


@pytest.mark.parametrize("rate, per", [(0, 1.0), (1, 0.0)])
def test_a_nonsense_limit_is_refused(tmp_path, rate: int, per: float) -> None:
    with pytest.raises(ValueError):
        SharedRateBudget(f"sqlite:///{tmp_path / 's.db'}", TOKEN, rate, per)


def test_a_raised_limit_does_not_wait_for_tokens_the_old_limit_spent(store_target: StoreTarget) -> None:
    clock = FakeClock()
    strict = _fake_budget(store_target, clock, rate=3, per=6.0)
    for _ in range(3):
        strict.acquire()
        strict.mark_answered()
    clock.now += 7.0
    loose = _fake_budget(store_target, clock, rate=100, per=60.0)  # the three are still in its 60 s window
    assert [loose.acquire() for _ in range(10)] == [0.0] * 10
    assert loose.available == 100 - 13


def test_a_lowered_limit_holds_once_the_old_grants_left_its_window(store_target: StoreTarget) -> None:
    clock = FakeClock()
    loose = _fake_budget(store_target, clock, rate=100, per=60.0)
    for _ in range(10):
        loose.acquire()
    clock.now += 7.0
    strict = _fake_budget(store_target, clock, rate=3, per=6.0)
    stamps = []
    for _ in range(7):
        strict.acquire()
        stamps.append(clock.now)
        strict.mark_answered()
    assert stamps[:3] == [stamps[0]] * 3
    assert most_in_any_window(stamps, 6.0) <= 3


def test_a_store_failure_is_a_clear_error_without_sql_text(tmp_path) -> None:
    path = tmp_path / "store.db"
    budget = SharedRateBudget(f"sqlite:///{path}", TOKEN, 2, 1.0)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE sync_rate_budget_slots")
    with pytest.raises(StoreUnavailable) as caught:
        budget.acquire()
    message = str(caught.value)
    assert "rate budget" in message and "OperationalError" in message
    assert "SELECT" not in message and "budget_key" not in message and caught.value.__cause__ is None
