"""What the benchmark measures around one Dagster run: requests per service, Vista queries, wall
time from the run record, and the minimum number of SafetyAmp requests the run needed."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from safetyamp_pipeline.core.refs import natural_key
from safetyamp_pipeline.sandbox.server import SlidingWindowRateLimiter

# Fields the server stamps on every write; a record whose other fields are equal did not change.
VOLATILE_FIELDS = frozenset({"updated_at", "updated_by", "created_at", "created_by", "last_logged_in"})


class VistaQueryCounter:
    """Counts statements executed on any SQLAlchemy engine whose URL names the Vista database."""

    def __init__(self, marker: str = "vista.db") -> None:
        self.marker = marker
        self.count = 0
        self._lock = threading.Lock()

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.marker in str(conn.engine.url):
            with self._lock:
                self.count += 1

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._on_execute)

    def remove(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._on_execute)

    @contextmanager
    def counting(self) -> Iterator[VistaQueryCounter]:
        self.install()
        try:
            yield self
        finally:
            self.remove()


class CountingRateLimiter(SlidingWindowRateLimiter):
    """The emulator's sliding-window limiter, counting the requests it refused (429s) and keeping
    the arrival time (``time.monotonic``, this process: the emulators run in it) of every request
    and of each accepted one."""

    def __init__(self, limit: int, window: float) -> None:
        super().__init__(limit, window)
        self.rejected = 0
        self.seen_at: list[float] = []
        self.accepted_at: list[float] = []

    def check(self, key: str) -> Any:
        decision = super().check(key)
        self.seen_at.append(time.monotonic())
        if decision.allowed:
            self.accepted_at.append(time.monotonic())
        else:
            self.rejected += 1
        return decision


class LimiterWaits(logging.Handler):
    """The SafetyAmp client's own DEBUG record of each request it held for its rate limiter
    ("waited N s for the client rate limiter"), with the time the request was released."""

    LOGGER = "safetyamp_pipeline.clients"

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.released_at: list[float] = []
        self.waited: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "client rate limiter" in str(record.msg):
            self.released_at.append(time.monotonic())
            args = record.args if isinstance(record.args, tuple) else ()
            self.waited.append(float(args[-1]) if args and isinstance(args[-1], int | float) else 0.0)

    def ready_at(self, after: float, arrival: float) -> float:
        """When the request arriving at ``arrival`` (the first after ``after``) was ready to go: its
        release minus its limiter wait when it was held, else its arrival."""
        for released, waited in zip(self.released_at, self.waited, strict=True):
            if after < released <= arrival:
                return released - waited
        return arrival

    @contextmanager
    def capturing(self) -> Iterator[LimiterWaits]:
        logger = logging.getLogger(self.LOGGER)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)


def budget_use(accepted_at: list[float], released_at: list[float], limit: int, window: float) -> dict[str, Any]:
    """How much of the rate budget was used while requests were waiting for it.

    A held request went out because a token came back; at best it arrives exactly ``window``
    after the request ``limit`` places before it. ``use`` = ``window`` x held requests / the sum of
    those gaps (1.0: every held request left the moment the window allowed it). A held request is
    matched to the first arrival after its release (the runs send one request at a time)."""
    arrivals = sorted(accepted_at)
    gaps: list[float] = []
    first = 0
    for released in sorted(released_at):
        while first < len(arrivals) and arrivals[first] < released:
            first += 1
        if first < len(arrivals):
            if first >= limit:
                gaps.append(arrivals[first] - arrivals[first - limit])
            first += 1
    return {
        "held_requests": len(released_at),
        "held_requests_matched": len(gaps),
        "budget_use": round(window * len(gaps) / sum(gaps), 3) if gaps else None,
        "mean_gap_seconds": round(sum(gaps) / len(gaps), 3) if gaps else None,
    }


def run_wall_seconds(instance: dg.DagsterInstance, run_id: str) -> float:
    """Wall time of the run as Dagster recorded it (RUN_START to RUN_SUCCESS/FAILURE)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.start_time is None or record.end_time is None:
        raise RuntimeError(f"run {run_id} has no start/end time in the instance")
    return float(record.end_time - record.start_time)


def by_method(by_route: Mapping[str, int]) -> dict[str, int]:
    methods: Counter[str] = Counter()
    for route, count in by_route.items():
        methods[route.split(" ", 1)[0]] += int(count)
    return dict(sorted(methods.items()))


def _stable(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE_FIELDS}


@dataclass
class ServerDiff:
    """How SafetyAmp's records changed over a run: the writes that were needed, at one request each."""

    created: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    changed_keys: dict[str, list[str]] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return sum(self.created.values()) + sum(self.changed.values())


def server_diff(before: Mapping[str, list[dict]], after: Mapping[str, list[dict]]) -> ServerDiff:
    diff = ServerDiff()
    for entity in sorted(set(before) | set(after)):
        if entity in ("roles", "asset_types"):
            continue
        old = {str(r["id"]): r for r in before.get(entity, [])}
        new = {str(r["id"]): r for r in after.get(entity, [])}
        created = [i for i in new if i not in old]
        changed = [i for i in new if i in old and _stable(old[i]) != _stable(new[i])]
        diff.created[entity] = len(created)
        diff.changed[entity] = len(changed)
        diff.changed_keys[entity] = sorted(str(natural_key(entity, new[i]) or i) for i in created + changed)
    return diff


@dataclass
class RunMeasure:
    """One Dagster run: what it sent and how long it took."""

    run_id: str
    success: bool
    failure: str | None
    wall_seconds: float
    safetyamp_by_route: dict[str, int]
    samsara_by_route: dict[str, int]
    graph_by_route: dict[str, int]
    vista_queries: int
    process_cpu_seconds: float
    rate_limit_wait_seconds: float
    sinks: dict[str, dict[str, Any]]

    @property
    def safetyamp_total(self) -> int:
        return sum(self.safetyamp_by_route.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "success": self.success,
            "failure": self.failure,
            "wall_seconds": round(self.wall_seconds, 3),
            "safetyamp_requests": self.safetyamp_total,
            "safetyamp_by_method": by_method(self.safetyamp_by_route),
            "safetyamp_by_route": self.safetyamp_by_route,
            "samsara_requests": sum(self.samsara_by_route.values()),
            "samsara_by_route": self.samsara_by_route,
            "graph_requests": sum(self.graph_by_route.values()),
            "graph_by_route": self.graph_by_route,
            "vista_queries": self.vista_queries,
            "process_cpu_seconds": round(self.process_cpu_seconds, 3),
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
            "sinks": {
                entity: {k: v for k, v in sink.items() if isinstance(v, int | float | bool)}
                for entity, sink in self.sinks.items()
            },
        }


def measured_sync(run: Any, job: str = "safetyamp_sync") -> RunMeasure:
    """Run ``job`` on the ``SandboxRun`` with fresh request counters and a Vista query counter.
    ``process_cpu_seconds`` is this process's CPU over the run: the sync plus the in-process
    emulators answering it (a load-independent companion to the wall time on a shared machine)."""
    run.reset_requests()
    cpu = time.process_time()
    with VistaQueryCounter().counting() as vista:
        outcome = run.sync(job)
    cpu = time.process_time() - cpu
    return RunMeasure(
        run_id=outcome.run_id,
        success=outcome.success,
        failure=outcome.failure,
        wall_seconds=run_wall_seconds(run.instance, outcome.run_id),
        safetyamp_by_route=dict(run.requests("safetyamp")["by_route"]),
        samsara_by_route=dict(run.requests("samsara")["by_route"]),
        graph_by_route=dict(run.requests("graph")["by_route"]),
        vista_queries=vista.count,
        process_cpu_seconds=cpu,
        rate_limit_wait_seconds=sum(float(s.get("rate_limit_wait_seconds", 0.0)) for s in outcome.sinks.values()),
        sinks=outcome.sinks,
    )
