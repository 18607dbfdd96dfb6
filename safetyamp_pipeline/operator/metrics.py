"""Prometheus metrics of the sync, read from the sync store and the Dagster instance on each scrape.

The collector needs neither the daemon nor a run: it opens the store and the instance itself, so
the exporter can run as a process (pod) of its own and still report when the daemon is dead or a
schedule was stopped. One collection is reused for ``cache_seconds`` (Prometheus scrapes and a
dashboard refresh can come close together; the ledger aggregate is the expensive part).

Labels carry only entity, kind, action, status and job/schedule names: never a record key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from safetyamp_pipeline.store.failures import FAILURE_KINDS
from safetyamp_pipeline.store.tables import build_tables
from safetyamp_pipeline.sync.masking import mask_text

log = logging.getLogger(__name__)

ENTITIES = ("site_clusters", "sites", "user_titles", "users", "assets")
# state label -> the sink materialization's metadata key (sinks.py `_report_metadata`)
RECORD_STATES = {
    "created": "created",
    "updated": "updated",
    "deactivated": "deactivated",
    "unchanged": "unchanged",
    "rejected": "rejected_before_send",
    "failed": "failed",
}
RUN_STATUSES = ("queued", "not_started", "managed", "starting", "started", "success", "failure", "canceling", "canceled")
DEFAULT_JOBS = ("safetyamp_sync", "safetyamp_reconcile", "safetyamp_employee_sync", "safetyamp_provision_on_demand")
DEFAULT_CACHE_SECONDS = 15.0
# How many recent materializations of a sink are searched for one that was not a dry run.
_MATERIALIZATION_LOOKBACK = 20


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # "gauge" | "counter"
    labels: tuple[str, ...]
    documentation: str


# Every metric the exporter can serve, by its exposed name. Tests check the dashboard and
# the alert rules against this list.
METRICS: dict[str, MetricSpec] = {
    "safetyamp_sink_last_success_timestamp_seconds": MetricSpec("gauge", ("entity",), "Unix time of the sink's last successful (non dry-run) materialization."),
    "safetyamp_sink_records": MetricSpec("gauge", ("entity", "state"), "Records per outcome in the sink's last successful materialization."),
    "safetyamp_api_requests": MetricSpec("gauge", ("entity",), "SafetyAmp API requests made by the sink's last successful materialization."),
    "safetyamp_rate_limit_wait_seconds": MetricSpec("gauge", ("entity",), "Seconds the sink's last successful materialization waited on the rate limiter."),
    "safetyamp_sink_duration_seconds": MetricSpec("gauge", ("entity",), "Seconds the sink's last successful materialization took."),
    "safetyamp_open_failures": MetricSpec("gauge", ("entity", "kind"), "Records whose last write failed and that are not dismissed (sync store)."),
    "safetyamp_ledger_writes_total": MetricSpec("counter", ("entity", "action", "status"), "Ledger entries (writes, planned and skipped writes) in the sync store."),
    "safetyamp_job_last_run_status": MetricSpec("gauge", ("job", "status"), "1 for the status of the job's latest run, 0 for the other statuses."),
    "safetyamp_job_last_run_timestamp_seconds": MetricSpec("gauge", ("job",), "Unix time the job's latest run ended (or was created, while it runs)."),
    "safetyamp_job_last_success_timestamp_seconds": MetricSpec("gauge", ("job",), "Unix time the job's latest successful run ended."),
    "safetyamp_automation_running": MetricSpec("gauge", ("name", "type"), "1 when the schedule or sensor is running, 0 when it is stopped."),
    "safetyamp_automation_last_tick_timestamp_seconds": MetricSpec("gauge", ("name", "type"), "Unix time of the schedule's or sensor's latest tick."),
    "safetyamp_daemon_last_heartbeat_timestamp_seconds": MetricSpec("gauge", ("daemon",), "Unix time of the Dagster daemon's latest heartbeat, per daemon."),
    "safetyamp_exporter_store_up": MetricSpec("gauge", (), "1 when the exporter could read the sync store on its latest collection."),
    "safetyamp_exporter_instance_up": MetricSpec("gauge", (), "1 when the exporter could read the Dagster instance on its latest collection."),
    "safetyamp_exporter_collect_duration_seconds": MetricSpec("gauge", (), "Seconds the exporter's latest collection took."),
}


@dataclass(frozen=True)
class Automation:
    """A schedule or sensor as declared in code (its default status applies until it is toggled)."""

    name: str
    kind: str  # "schedule" | "sensor"
    default_running: bool


@dataclass(frozen=True)
class CodeInfo:
    jobs: tuple[str, ...] = DEFAULT_JOBS
    automations: tuple[Automation, ...] = ()


@dataclass
class Snapshot:
    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        self.samples.setdefault(name, []).append((labels, float(value)))


def load_code_info() -> CodeInfo:
    """Job, schedule and sensor names with their default status, from the code location."""
    from safetyamp_pipeline.definitions import defs

    repo = defs().get_repository_def()
    jobs = tuple(sorted({*DEFAULT_JOBS, *(j.name for j in repo.get_all_jobs() if not j.name.startswith("__"))}))
    automations = [
        Automation(s.name, "schedule", s.default_status is not None and s.default_status.value == "RUNNING")
        for s in repo.schedule_defs
    ] + [Automation(s.name, "sensor", s.default_status is not None and s.default_status.value == "RUNNING") for s in repo.sensor_defs]
    return CodeInfo(jobs=jobs, automations=tuple(sorted(automations, key=lambda a: (a.kind, a.name))))


class SyncCollector(Collector):
    """A prometheus_client collector over the sync store and the Dagster instance.

    ``open_store`` and ``open_instance`` are called again after a failure, so the exporter recovers
    when the store or the instance database comes back."""

    def __init__(
        self,
        open_store: Callable[[], Any],
        open_instance: Callable[[], Any],
        code_info: Callable[[], CodeInfo] = load_code_info,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_store = open_store
        self._open_instance = open_instance
        self._code_info_loader = code_info
        self._code_info: CodeInfo | None = None
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._store: Any = None
        self._instance: Any = None
        self._cached: tuple[float, Snapshot] | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily; do not query the store when the collector is registered

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        for name, spec in METRICS.items():
            samples = snapshot.samples.get(name)
            if not samples:
                continue
            label_names = list(spec.labels)
            if spec.kind == "counter":
                family: Metric = CounterMetricFamily(name.removesuffix("_total"), spec.documentation, labels=label_names)
            else:
                family = GaugeMetricFamily(name, spec.documentation, labels=label_names)
            for labels, value in samples:
                family.add_metric([labels[n] for n in label_names], value)  # type: ignore[attr-defined]
            yield family

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._cache_seconds:
                return self._cached[1]
            snapshot = Snapshot()
            started = time.monotonic()
            snapshot.add("safetyamp_exporter_store_up", {}, self._guard("store", self._collect_store, snapshot))
            snapshot.add("safetyamp_exporter_instance_up", {}, self._guard("instance", self._collect_instance, snapshot))
            snapshot.add("safetyamp_exporter_collect_duration_seconds", {}, round(time.monotonic() - started, 4))
            self._cached = (now, snapshot)
            return snapshot

    def _guard(self, part: str, collect: Callable[[Snapshot], None], snapshot: Snapshot) -> float:
        """Run one part's collection; its samples count only when the whole part succeeded."""
        partial = Snapshot()
        try:
            collect(partial)
            for name, samples in partial.samples.items():
                snapshot.samples.setdefault(name, []).extend(samples)
            return 1.0
        except Exception as exc:  # noqa: BLE001 - reported as *_up 0 and one masked log line
            message = (str(exc).strip().splitlines() or [""])[0]
            log.warning("metrics: cannot read the %s: %s: %s", part, type(exc).__name__, mask_text(message)[:300])
            if part == "store":
                self._store = None
            else:
                self._instance = None
            return 0.0

    # -- sync store --------------------------------------------------------------------------------
    def _collect_store(self, snapshot: Snapshot) -> None:
        if self._store is None:
            self._store = self._open_store()
        store = self._store
        tables = build_tables(store.schema)
        failures, ledger = tables.failures, tables.ledger
        with store.engine.connect() as conn:
            open_counts = Counter(
                {
                    (row.entity, row.kind): int(row.n)
                    for row in conn.execute(
                        select(failures.c.entity, failures.c.kind, func.count().label("n"))
                        .where(failures.c.dismissed.is_(False))
                        .group_by(failures.c.entity, failures.c.kind)
                    )
                }
            )
            writes = [
                (row.entity, row.action, row.status, int(row.n))
                for row in conn.execute(
                    select(ledger.c.entity, ledger.c.action, ledger.c.status, func.count().label("n"))
                    .group_by(ledger.c.entity, ledger.c.action, ledger.c.status)
                    .order_by(ledger.c.entity, ledger.c.action, ledger.c.status)
                )
            ]
        # Zero series for every entity and kind: a rise from 0 is visible and no series is absent.
        for entity, kind in sorted({*((e, k) for e in ENTITIES for k in FAILURE_KINDS), *open_counts}):
            snapshot.add("safetyamp_open_failures", {"entity": entity, "kind": kind}, open_counts.get((entity, kind), 0))
        for entity, action, status, count in writes:
            snapshot.add("safetyamp_ledger_writes_total", {"entity": entity, "action": action, "status": status}, count)

    # -- Dagster instance --------------------------------------------------------------------------
    def _collect_instance(self, snapshot: Snapshot) -> None:
        if self._instance is None:
            self._instance = self._open_instance()
        instance = self._instance
        code_info = self._load_code_info()
        self._collect_sinks(instance, snapshot)
        self._collect_jobs(instance, snapshot, code_info.jobs)
        self._collect_automation(instance, snapshot, code_info.automations)
        for daemon, heartbeat in sorted(instance.get_daemon_heartbeats().items()):
            snapshot.add("safetyamp_daemon_last_heartbeat_timestamp_seconds", {"daemon": str(daemon)}, heartbeat.timestamp)

    def _load_code_info(self) -> CodeInfo:
        """The code location's names, loaded once; while it cannot be loaded the stored states and
        the known job names are reported (the next collection tries again)."""
        if self._code_info is None:
            try:
                self._code_info = self._code_info_loader()
            except Exception as exc:  # noqa: BLE001 - degrade, do not fail the instance metrics
                log.warning("metrics: cannot load the code location's definitions: %s", type(exc).__name__)
                return CodeInfo()
        return self._code_info

    @staticmethod
    def _collect_sinks(instance: Any, snapshot: Snapshot) -> None:
        import dagster as dg

        for entity in ENTITIES:
            result = instance.fetch_materializations(dg.AssetKey(["safetyamp", entity]), limit=_MATERIALIZATION_LOOKBACK)
            record = next((r for r in result.records if not _metadata(r).get("dry_run")), None)
            if record is None:
                continue
            metadata = _metadata(record)
            labels = {"entity": entity}
            snapshot.add("safetyamp_sink_last_success_timestamp_seconds", labels, record.timestamp)
            for state, key in RECORD_STATES.items():
                snapshot.add("safetyamp_sink_records", {"entity": entity, "state": state}, _number(metadata.get(key)))
            snapshot.add("safetyamp_api_requests", labels, _number(metadata.get("api_calls")))
            snapshot.add("safetyamp_rate_limit_wait_seconds", labels, _number(metadata.get("rate_limit_wait_seconds")))
            snapshot.add("safetyamp_sink_duration_seconds", labels, _number(metadata.get("seconds")))

    @staticmethod
    def _collect_jobs(instance: Any, snapshot: Snapshot, jobs: Sequence[str]) -> None:
        import dagster as dg

        for job in jobs:
            latest = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
            if latest:
                record = latest[0]
                status = record.dagster_run.status.value.lower()
                for candidate in RUN_STATUSES:
                    snapshot.add("safetyamp_job_last_run_status", {"job": job, "status": candidate}, candidate == status)
                at = record.end_time or record.create_timestamp.timestamp()
                snapshot.add("safetyamp_job_last_run_timestamp_seconds", {"job": job}, at)
            succeeded = instance.get_run_records(
                dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
            )
            if succeeded and succeeded[0].end_time:
                snapshot.add("safetyamp_job_last_success_timestamp_seconds", {"job": job}, succeeded[0].end_time)

    @staticmethod
    def _collect_automation(instance: Any, snapshot: Snapshot, declared: Sequence[Automation]) -> None:
        from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

        states: dict[tuple[str, str], Any] = {}
        for state in instance.all_instigator_state():
            kind = "schedule" if state.instigator_type == InstigatorType.SCHEDULE else "sensor"
            states[(state.instigator_name, kind)] = state
        names = {(a.name, a.kind): a.default_running for a in declared}
        for name, kind in sorted({*names, *states}):
            state = states.get((name, kind))
            if state is None or state.status == InstigatorStatus.DECLARED_IN_CODE:
                running = names.get((name, kind), state is not None)
            else:
                running = state.status == InstigatorStatus.RUNNING
            labels = {"name": name, "type": kind}
            snapshot.add("safetyamp_automation_running", labels, running)
            if state is not None:
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                if ticks:
                    snapshot.add("safetyamp_automation_last_tick_timestamp_seconds", labels, ticks[0].timestamp)


def _metadata(record: Any) -> dict[str, Any]:
    materialization = record.asset_materialization
    if materialization is None:
        return {}
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
