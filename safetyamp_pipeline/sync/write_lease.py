"""Hold the sync store's SafetyAmp write lease while a step reads, plans and writes SafetyAmp.

Two runs that plan from the same SafetyAmp state both create what is missing; the lease makes the
second run plan from the state the first one left (see `store.leases` for why Dagster's pool is
not enough). While the lease is held a daemon thread renews it, so a long initial load keeps it
however long a rate-limit wait lasts. A run that dies stops renewing: its lease expires after
`DEFAULT_TTL`, or at once for a waiter on the same host that sees the holder's process is gone
(a SIGKILLed local run, the next `make sync`). The holder text is `<run id>/<entity>@<host>:<pid>`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

WRITE_LEASE = "safetyamp_api"
DEFAULT_TTL = timedelta(seconds=90)
WAIT_LOG_EVERY_SECONDS = 60.0


class LeaseStore(Protocol):
    def lease_try(self, name: str, holder: str, ttl: timedelta) -> str | None: ...

    def lease_take_over(self, name: str, holder: str, dead_holder: str, ttl: timedelta) -> bool: ...

    def lease_release(self, name: str, holder: str) -> None: ...


def holder_name(run_id: str, entity: str) -> str:
    return f"{run_id}/{entity}@{socket.gethostname()}:{os.getpid()}"


def holder_is_gone(holder: str) -> bool:
    """True when `holder` names a process of this host that no longer runs. Another host's holder
    is never judged (its pid means nothing here): its lease expires instead."""
    _, _, place = holder.rpartition("@")
    host, _, pid_text = place.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@contextmanager
def holding_write_lease(
    store: LeaseStore,
    holder: str,
    log: Any,
    *,
    ttl: timedelta = DEFAULT_TTL,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[float]:
    """Wait for the lease, hold it for the block, give it back. Yields the seconds waited."""
    started = monotonic()
    last_log = None
    while (other := store.lease_try(WRITE_LEASE, holder, ttl)) is not None:
        if holder_is_gone(other) and store.lease_take_over(WRITE_LEASE, holder, other, ttl):
            log.warning("Took over the SafetyAmp write lease of %s: its process is no longer running", other)
            break
        now = monotonic()
        if last_log is None or now - last_log >= WAIT_LOG_EVERY_SECONDS:
            log.info(
                "Waiting for the SafetyAmp write lease, held by %s (a run writing to SafetyAmp; the lease "
                "of a run that died expires %d s after its last renewal)",
                other, ttl.total_seconds(),
            )
            last_log = now
        sleep(poll_seconds)
    waited = monotonic() - started
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, holder, ttl, stop, log), name="write-lease", daemon=True)
    renewer.start()
    log.debug("SafetyAmp write lease taken by %s", holder)
    try:
        yield waited
    finally:
        stop.set()
        renewer.join()
        log.debug("SafetyAmp write lease released by %s", holder)
        try:
            store.lease_release(WRITE_LEASE, holder)
        except Exception as exc:  # the store is down; the step's own error says so, the lease expires
            log.warning("Could not release the SafetyAmp write lease (%s); it expires by itself", type(exc).__name__)


def _renew(store: LeaseStore, holder: str, ttl: timedelta, stop: threading.Event, log: Any) -> None:
    while not stop.wait(ttl.total_seconds() / 6):
        try:
            other = store.lease_try(WRITE_LEASE, holder, ttl)
        except Exception as exc:  # the store is down: the step fails on its own next write
            log.warning("Could not renew the SafetyAmp write lease: %s", type(exc).__name__)
            continue
        if other is not None:
            log.warning("The SafetyAmp write lease expired and was taken by %s", other)
