"""The sink engine: reconcile one SafetyAmp entity with its desired state.

For one entity it loads the current SafetyAmp state from the store's mirror (a full read when the
mirror is older than the allowed age, when a reconcile run asks, or when a write intent is
unconfirmed: `sync.read`), plans with ``core.plan``, guards against mass deactivation, applies the
writes through the one rate-limited client (`sync.apply`: intent, send, ledger, mirror, heal,
failures) and retries transient failures in further passes. Plain Python: the Dagster sink assets
and the benchmarks both drive it; `sync.report` holds what it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from safetyamp_pipeline.clients.errors import ApiError
from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.plan import PlanItem
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.sync.apply import BATCH_SIZE, LATER, Applier, Heal
from safetyamp_pipeline.sync.masking import mask_text
from safetyamp_pipeline.sync.ports import EngineStore, SafetyAmpApi
from safetyamp_pipeline.sync.read import REFERENCE_ENTITIES, UNKEYED_PREFIX, MirrorReader, reference_key
from safetyamp_pipeline.sync.report import (
    CHANGE_TABLE_ROWS,
    SinkOptions,
    SinkReport,
    active_count,
    masked_changes,
)

__all__ = [
    "CHANGE_TABLE_ROWS",
    "REFERENCE_ENTITIES",
    "UNKEYED_PREFIX",
    "MassDeactivationBlocked",
    "Reconciler",
    "SinkOptions",
    "SinkReport",
    "masked_changes",
    "reference_key",
]

WRITE_ACTIONS = ("create", "update", "deactivate")
CONSECUTIVE_TRANSIENT_LIMIT = 10
OWNED_ENTITIES = ("assets",)  # entities whose records are retired only when the sync owns them
Progress = Callable[[int, int], None]  # (write items handled, write items planned)
RETRY_PASSES = 3  # extra passes over transient failures in the same run, while each one makes progress


class MassDeactivationBlocked(Exception):
    """The plan would deactivate more records than the guard allows; nothing was written."""

    def __init__(self, entity: str, planned: int, reason: str, active: int) -> None:
        super().__init__(
            f"{entity}: {reason}; nothing was written. Check the sources; if the deactivations are "
            "intended, re-run with the run tag allow_mass_deactivation=true."
        )
        self.entity, self.planned, self.reason, self.active = entity, planned, reason, active


def _total_requests(client: object) -> int:
    stats = getattr(client, "stats", None)
    if stats is None:
        return 0
    total = getattr(stats, "total_requests", None)
    if total is None and isinstance(stats, Mapping):
        total = stats.get("total_requests", stats.get("total", 0))
    return int(total or 0)


def _limiter_wait(client: object) -> float:
    stats = getattr(client, "stats", None)
    if stats is None:
        return 0.0
    value = getattr(stats, "limiter_wait_seconds", None)
    if value is None and isinstance(stats, Mapping):
        value = stats.get("limiter_wait_seconds", 0.0)
    return float(value or 0.0)


class Reconciler:
    """Reconciles entities one at a time; one instance per run."""

    def __init__(
        self,
        client: SafetyAmpApi,
        store: EngineStore,
        settings: SyncSettings,
        options: SinkOptions,
        log: logging.Logger | Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.options = options
        self.log = log or logging.getLogger(__name__)
        self.now = now
        self.reader = MirrorReader(client, store, options, self.log, now)
        self.applier = Applier(client, store, options, self.log)
        self._reread_for_heal: set[str] = set()  # entities re-read after a conflict in this run
        self.progress = progress

    # -- current state (sync.read) ------------------------------------------------------------------

    @property
    def drift(self) -> dict[str, int]:
        return self.reader.drift

    def full_read(self, entity: str) -> dict[str, dict]:
        # The batch's answers first (else the read would settle their intents as lost answers);
        # the read closes the intents recorded ahead, so those writes record theirs again.
        self.applier.flush()
        self.applier.forget_prepared()
        return self.reader.full_read(entity)

    def current(self, entity: str) -> tuple[dict[str, dict], bool]:
        """The entity's current SafetyAmp records by natural key, and whether a full read happened."""
        return self.reader.current(entity)

    def state_for_refs(self, entities: Sequence[str]) -> dict[str, list[dict]]:
        return self.reader.state_for_refs(entities)

    def was_read_in_full(self, entity: str) -> bool:
        """Whether this run replaced the entity's mirror with a full read of SafetyAmp."""
        return entity in self.reader.fully_read

    def store_record(self, entity: str, key: str) -> dict | None:
        return self.applier.written.get((entity, key))

    # -- planning --------------------------------------------------------------------------------

    def _guard(self, entity: str, items: Sequence[PlanItem], current: Mapping[str, dict]) -> None:
        if self.options.allow_mass_deactivation:
            return
        active = active_count(entity, current)
        reason = core_plan.mass_deactivation_reason(items, active, self.settings)
        if reason:
            planned = sum(1 for i in items if i.action == "deactivate")
            raise MassDeactivationBlocked(entity, planned, reason, active)

    # -- records the sync owns (only those are retired) -------------------------------------------

    def _owned(self, entity: str) -> set[str] | None:
        """Ids of the assets the sync created or matched from Samsara in earlier runs (None for
        other entities). A store that has none yet starts from the creates in its ledger."""
        if entity not in OWNED_ENTITIES:
            return None
        owned = self.store.owned_ids(entity)
        if not owned:
            created = self.store.ledger_query(entity=entity, status="ok")
            owned = {
                str(row["after"]["id"]) for row in created
                if row.get("action") == "create" and isinstance(row.get("after"), Mapping) and row["after"].get("id") is not None
            }
        return owned

    def _remember_owned(self, entity: str, items: Sequence[PlanItem], owned: set[str]) -> None:
        """Keep as owned what this run matched (updated, unchanged, retired) or created."""
        ids = {str(i) for i in core_plan.matched_asset_ids(items)}
        ids |= {str(r["id"]) for (e, _), r in self.applier.written.items() if e == entity and r.get("id") is not None}
        self.store.owned_add(entity, ids | owned)  # stores only the new ones (and a ledger start)

    def _report_progress(self, done: int, planned: int) -> None:
        if self.progress is not None:
            self.progress(done, planned)

    # -- the whole entity --------------------------------------------------------------------------

    def reconcile(
        self,
        entity: str,
        desired: Sequence[DesiredRecord],
        ref_entities: Sequence[str],
        ref_state: Mapping[str, list[dict]] | None = None,
    ) -> SinkReport:
        """Reconcile ``entity``. ``ref_entities`` are the other entities whose ids the payloads need;
        ``ref_state`` may give some of them already (the upstream sinks' outputs)."""
        started = time.monotonic()
        calls_before = _total_requests(self.client)
        wait_before = _limiter_wait(self.client)
        report = SinkReport(entity=entity)
        current, report.full_read = self.current(entity)
        state: dict[str, list[dict]] = dict(ref_state or {})
        for ref_entity in ref_entities:
            if ref_entity not in state:
                state[ref_entity] = list(self.current(ref_entity)[0].values())
        state[entity] = list(current.values())
        report.duplicates = [
            {"key": d.key, "kept_id": d.kept_id, "duplicate_ids": ", ".join(str(i) for i in d.duplicate_ids)}
            for d in core_plan.duplicate_keys(entity, state[entity])
        ]

        refs = core_plan.RefIndex.from_state(state, self.settings)
        owned = self._owned(entity)
        items = core_plan.plan_entity(
            entity, list(desired), list(current.values()), refs, self.settings, owned_asset_ids=owned
        )
        self._guard(entity, items, current)
        desired_by_key = {r.key: r for r in desired}
        planned = sum(1 for i in items if i.action in WRITE_ACTIONS)
        if self.progress is not None:
            self.progress(0, planned)

        def heal(item: PlanItem) -> PlanItem | Literal["later"] | None:
            # One re-read per entity and run however many conflicts: later ones re-plan on the
            # mirror, which holds that read plus every write answered since.
            from_mirror = entity in self._reread_for_heal
            if from_mirror:
                fresh = self.store.mirror_records(entity)
            else:
                fresh = self.full_read(entity)
                self._reread_for_heal.add(entity)
            state[entity] = list(fresh.values())
            record = desired_by_key.get(item.key)
            if record is None:
                return None
            fresh_refs = core_plan.RefIndex.from_state(state, self.settings)
            replanned = core_plan.plan_entity(entity, [record], list(fresh.values()), fresh_refs, self.settings)
            if from_mirror and replanned and replanned[0].action == item.action == "create":
                # The record holding the value appeared after the re-read (a concurrent writer):
                # sending again would be refused again; the retry pass reads once more.
                return LATER
            return core_plan.resolve_deferred(replanned[0], fresh_refs) if replanned else None

        transient_keys: list[str] = []
        deferred_keys: list[str] = []  # waiting for a parent; retried with the transient failures
        open_failures = {f["key"] for f in self.store.failures_open(entity)} if not self.options.dry_run else set()
        with self.applier.batching():
            aborted = self._apply_items(
                entity, items, refs, report, heal, planned, open_failures, transient_keys, deferred_keys
            )
            passes = 0
            while transient_keys and not aborted and not self.options.dry_run and passes < RETRY_PASSES:
                passes += 1
                progress, transient_keys, deferred_keys = self._second_pass(
                    entity, transient_keys, deferred_keys, desired_by_key, state, report, owned
                )
                if not progress:
                    break
        if owned is not None and not self.options.dry_run:
            self._remember_owned(entity, items, owned)
        self._report_progress(planned, planned)
        report.drift = self.drift.get(entity, 0)
        report.api_calls = _total_requests(self.client) - calls_before
        report.rate_limit_wait_seconds = _limiter_wait(self.client) - wait_before
        report.seconds = time.monotonic() - started
        return report

    def _lookahead(self, items: Sequence[PlanItem], start: int, refs: core_plan.RefIndex) -> list[PlanItem]:
        """The next writes from ``items[start]`` on as they would be sent now (the rest of a batch)."""
        ahead: list[PlanItem] = []
        for item in items[start:]:
            if len(ahead) >= BATCH_SIZE - 1:
                break
            if item.action in WRITE_ACTIONS:
                resolved = core_plan.resolve_deferred(item, refs)
                if not resolved.deferred:
                    ahead.append(resolved)
        return ahead

    def _apply_items(
        self,
        entity: str,
        items: Sequence[PlanItem],
        refs: core_plan.RefIndex,
        report: SinkReport,
        heal: Heal,
        planned: int,
        open_failures: set[str],
        transient_keys: list[str],
        deferred_keys: list[str],
    ) -> bool:
        """The first pass over the plan; fills ``transient_keys`` and ``deferred_keys`` and
        returns whether it stopped early after too many transient failures in a row."""
        done = 0
        consecutive_transient = 0
        aborted = False
        for index, item in enumerate(items):
            if item.action == "unchanged":
                report.unchanged += 1
                if item.key in open_failures:  # in step again (fixed by hand, or the source changed back)
                    self.store.failure_clear(entity, item.key)
                continue
            if item.action == "rejected":
                report.add_rejection(item.key, item.reason)
                continue
            setattr(report, f"planned_{item.action}", getattr(report, f"planned_{item.action}") + 1)
            done += 1
            if aborted:
                self._report_progress(done, planned)
                continue
            item = core_plan.resolve_deferred(item, refs)
            if item.deferred and not self.options.dry_run:
                missing = ", ".join(f"{e} {k}" for e, k in item.deferred.values())
                report.rejected_before_send += 1
                report.add_change(item, "skipped", f"waits for {missing}, which was not created")
                deferred_keys.append(item.key)
                self._report_progress(done, planned)
                continue
            if not self.options.dry_run and not self.applier.is_prepared(item):
                self.applier.prepare([item, *self._lookahead(items, index + 1, refs)])
            outcome = self.applier.apply_one(item, report, heal)
            self._report_progress(done, planned)
            if outcome == "ok" and not self.options.dry_run:
                written = self.store_record(entity, item.key)
                if written is not None:
                    refs.learn(entity, written)
            if outcome == "transient":
                transient_keys.append(item.key)
            consecutive_transient = consecutive_transient + 1 if outcome == "transient" else 0
            if consecutive_transient >= CONSECUTIVE_TRANSIENT_LIMIT:
                aborted = True
                self.log.error(
                    "%s: %d transient failures in a row; the remaining writes wait for the next run",
                    entity, consecutive_transient,
                )
        return aborted

    def _second_pass(
        self,
        entity: str,
        keys: Sequence[str],
        deferred_keys: Sequence[str],
        desired_by_key: Mapping[str, DesiredRecord],
        state: dict[str, list[dict]],
        report: SinkReport,
        owned: set[str] | None,
    ) -> tuple[bool, list[str], list[str]]:
        """Retry, in the same run, the writes that failed transiently: re-read the entity first (a
        create whose answer was lost may have happened; the read settles its intent), then re-plan
        and send those records (and the ones that waited for them). Returns whether any of them
        succeeded, and the keys still failed transiently and still waiting."""
        try:
            fresh = self.full_read(entity)
        except ApiError as exc:
            self.log.warning("%s: no further pass, the re-read failed: %s", entity, mask_text(str(exc)))
            return False, [], []
        state[entity] = list(fresh.values())
        refs = core_plan.RefIndex.from_state(state, self.settings)
        deferred = set(deferred_keys)
        wanted = set(keys) | deferred
        self.log.info(
            "%s: another pass for %d writes that failed transiently and %d that waited for them",
            entity, len(keys), len(deferred_keys),
        )
        recovered: set[str] = set()
        still_transient: list[str] = []
        still_deferred: list[str] = []
        progress = False
        # Plan the whole entity (a plan of a subset would retire every asset outside it) and keep
        # only the retried records.
        items = core_plan.plan_entity(
            entity, list(desired_by_key.values()), list(fresh.values()), refs, self.settings, owned_asset_ids=owned
        )
        for item in items:
            if item.key not in wanted:
                continue
            item = core_plan.resolve_deferred(item, refs)
            if item.action == "unchanged":
                if item.key not in deferred:
                    recovered.add(item.key)  # the first attempt had reached SafetyAmp after all
                self.store.failure_clear(entity, item.key)
                continue
            if item.action not in WRITE_ACTIONS:
                continue
            if item.deferred:
                still_deferred.append(item.key)
                continue
            outcome = self.applier.apply_one(item, report, heal=lambda _: None)
            if item.key in deferred:
                report.rejected_before_send -= 1  # sent at last: no longer "skipped"
            if outcome == "transient":
                still_transient.append(item.key)
                if item.key not in deferred:
                    # counted failed already for its first attempt
                    report.failed -= 1
                    report.transient_failures -= 1
            if outcome == "ok":
                progress = True
                if item.key not in deferred:
                    recovered.add(item.key)
                written = self.store_record(entity, item.key)
                if written is not None:
                    refs.learn(entity, written)
        if recovered:
            # `failed` counts the records still failed at the end of the run; the ledger keeps
            # every failed attempt.
            report.failed -= len(recovered)
            report.transient_failures -= len(recovered)
        # One row per record still failed: its latest attempt.
        latest = {f["key"]: f for f in report.failures if f["key"] not in recovered}
        report.failures = list(latest.values())
        return progress or bool(recovered), still_transient, still_deferred
