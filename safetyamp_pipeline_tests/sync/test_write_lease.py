"""`holding_write_lease`: a sink waits for another run's lease, keeps its own alive while it works
(however long), and gives it back even when the step fails."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.write_lease import WRITE_LEASE, holder_name, holding_write_lease


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = info
    debug = info


@pytest.fixture
def store(tmp_path: Path):
    s = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_a_second_run_waits_for_the_first_and_says_who_it_waits_for(store: SyncStore) -> None:
    log = RecordingLog()
    first_done = threading.Event()
    order: list[str] = []

    def first() -> None:
        with holding_write_lease(store, "run-a/users", log, poll_seconds=0.01):
            time.sleep(0.3)
            order.append("a done")
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    while store.lease_holder(WRITE_LEASE) is None:
        time.sleep(0.005)
    with holding_write_lease(store, "run-b/users", log, poll_seconds=0.01) as waited:
        order.append("b in")
        assert store.lease_holder(WRITE_LEASE) == "run-b/users"
    thread.join()
    assert order == ["a done", "b in"]
    assert waited > 0.1
    assert any("held by run-a/users" in line for line in log.lines), log.lines
    assert store.lease_holder(WRITE_LEASE) is None


def test_the_lease_is_renewed_while_held_so_a_long_step_keeps_it(store: SyncStore) -> None:
    ttl = timedelta(seconds=0.4)
    with holding_write_lease(store, "run-a/users", RecordingLog(), ttl=ttl):
        deadline = time.monotonic() + 1.5  # almost four lease lifetimes
        while time.monotonic() < deadline:
            assert store.lease_try(WRITE_LEASE, "run-b/users", ttl) == "run-a/users"
            time.sleep(0.05)
    assert store.lease_try(WRITE_LEASE, "run-b/users", ttl) is None


def test_the_lease_is_given_back_when_the_step_fails(store: SyncStore) -> None:
    with pytest.raises(RuntimeError), holding_write_lease(store, "run-a/users", RecordingLog()):
        raise RuntimeError("SafetyAmp down")
    assert store.lease_holder(WRITE_LEASE) is None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_local_holder_is_taken_over_at_once(store: SyncStore) -> None:
    dead = f"run-a/users@{socket.gethostname()}:{_dead_pid()}"
    assert store.lease_try(WRITE_LEASE, dead, timedelta(minutes=5)) is None
    log = RecordingLog()
    with holding_write_lease(store, holder_name("run-b", "users"), log, poll_seconds=0.01) as waited:
        assert store.lease_holder(WRITE_LEASE) == holder_name("run-b", "users")
    assert waited < 5
    assert any(f"Took over the SafetyAmp write lease of {dead}" in line for line in log.lines), log.lines


def test_a_holder_on_another_host_or_alive_here_is_waited_for(store: SyncStore) -> None:
    elsewhere = f"run-a/users@another-pod-7f9c:{_dead_pid()}"
    alive_here = f"run-c/users@{socket.gethostname()}:{os.getppid()}"
    for other in (elsewhere, alive_here):
        assert store.lease_try(WRITE_LEASE, other, timedelta(minutes=5)) is None
        sleeps: list[float] = []

        def sleep(seconds: float, other: str = other, sleeps: list[float] = sleeps) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 3:
                store.lease_release(WRITE_LEASE, other)

        with holding_write_lease(store, "run-b/users", RecordingLog(), sleep=sleep):
            pass
        assert len(sleeps) == 3, other
