"""The sync store's leases (`store.leases`): one holder at a time, across processes, on SQLite and
PostgreSQL; a lease of a killed holder expires."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline_tests.store.conftest import StoreTarget

CTX = multiprocessing.get_context("fork")
TTL = timedelta(minutes=5)


def test_a_held_lease_is_refused_to_others_until_released(store: SyncStore) -> None:
    assert store.lease_try("safetyamp_api", "run-a/users", TTL) is None
    assert store.lease_try("safetyamp_api", "run-b/users", TTL) == "run-a/users"
    assert store.lease_holder("safetyamp_api") == "run-a/users"
    assert store.lease_try("safetyamp_api", "run-a/users", TTL) is None  # renewal by the holder
    store.lease_release("safetyamp_api", "run-b/users")  # not the holder: no effect
    assert store.lease_try("safetyamp_api", "run-b/users", TTL) == "run-a/users"
    store.lease_release("safetyamp_api", "run-a/users")
    assert store.lease_holder("safetyamp_api") is None
    assert store.lease_try("safetyamp_api", "run-b/users", TTL) is None
    assert store.lease_try("other", "run-a/users", TTL) is None  # leases are independent by name


def test_an_expired_lease_is_taken_over(store_target: StoreTarget) -> None:
    now = [datetime(2026, 12, 5, 8, 0, tzinfo=UTC)]
    store = SyncStore(store_target.url, schema=store_target.schema, clock=lambda: now[0])
    try:
        assert store.lease_try("safetyamp_api", "killed-run/users", TTL) is None
        now[0] += TTL - timedelta(seconds=1)
        assert store.lease_try("safetyamp_api", "run-b/users", TTL) == "killed-run/users"
        now[0] += timedelta(seconds=2)
        assert store.lease_holder("safetyamp_api") is None
        assert store.lease_try("safetyamp_api", "run-b/users", TTL) is None
        # The old holder's late release does not free the new holder's lease.
        store.lease_release("safetyamp_api", "killed-run/users")
        assert store.lease_holder("safetyamp_api") == "run-b/users"
    finally:
        store.close()


def _contender(target: StoreTarget, name: str, start, log) -> None:
    store = target.open()
    start.wait(10)
    for _ in range(15):
        while store.lease_try("safetyamp_api", name, TTL) is not None:
            time.sleep(0.001)
        log.put((name, "in", time.monotonic()))
        time.sleep(0.005)
        log.put((name, "out", time.monotonic()))
        store.lease_release("safetyamp_api", name)
    store.close()


def test_processes_racing_for_the_lease_never_hold_it_together(store_target: StoreTarget) -> None:
    store_target.open().close()  # tables first, so the race is about the lease only
    start = CTX.Event()
    log: multiprocessing.Queue = CTX.Queue()
    workers = [CTX.Process(target=_contender, args=(store_target, f"run-{i}/users", start, log)) for i in range(3)]
    for worker in workers:
        worker.start()
    start.set()
    events = [log.get(timeout=120) for _ in range(3 * 15 * 2)]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    events.sort(key=lambda e: e[2])
    holders: list[str] = []
    for name, kind, _ in events:
        if kind == "in":
            holders.append(name)
            assert len(holders) == 1, f"{holders} held the lease at once"
        else:
            holders.remove(name)
    assert sum(1 for e in events if e[1] == "in") == 45
