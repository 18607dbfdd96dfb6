"""The sink engine: reconcile one SafetyAmp entity with its desired state.

For one entity it loads the current SafetyAmp state from the store's mirror (a full read when the
mirror is older than the allowed age, when a reconcile run asks, or when a write intent is
unconfirmed), plans with ``core.plan``, applies the writes through the one rate-limited client,
updates the mirror from every write response, appends every attempt to the ledger and records
failures. Plain Python: the Dagster sink assets and the benchmarks both drive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from safetyamp_pipeline.clients.errors import (
    AmbiguousWrite,
    ApiError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationRejected,
)
from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.sync.masking import mask_record, mask_text

REFERENCE_ENTITIES = ("roles", "asset_types")
WRITE_ACTIONS = ("create", "update", "deactivate")
CONSECUTIVE_TRANSIENT_LIMIT = 10
RETRY_PASSES = 3  # extra passes over transient failures in the same run, while each one makes progress
CHANGE_TABLE_ROWS = 50


class MassDeactivationBlocked(Exception):
    """The plan would deactivate more records than the guard allows; nothing was written."""

    def __init__(self, entity: str, planned: int, reason: str, active: int) -> None:
        super().__init__(
            f"{entity}: {reason}; nothing was written. Check the sources; if the deactivations are "
            "intended, re-run with the run tag allow_mass_deactivation=true."
        )
        self.entity, self.planned, self.reason, self.active = entity, planned, reason, active


@dataclass(frozen=True)
class SinkOptions:
    run_id: str
    dry_run: bool = False
    force_full_read: bool = False
    retry_failed: bool = False
    allow_mass_deactivation: bool = False
    mirror_max_age: timedelta = timedelta(hours=24)


@dataclass
class SinkReport:
    entity: str
    planned_create: int = 0
    planned_update: int = 0
    planned_deactivate: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    rejected_before_send: int = 0
    failed: int = 0
    held_failed: int = 0
    healed: int = 0
    api_calls: int = 0
    full_read: bool = False
    drift: int = 0
    seconds: float = 0.0
    rate_limit_wait_seconds: float = 0.0
    changes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    transient_failures: int = 0

    def counts(self) -> dict[str, int]:
        names = (
            "planned_create", "planned_update", "planned_deactivate", "created", "updated", "deactivated",
            "unchanged", "rejected_before_send", "failed", "held_failed", "healed", "api_calls", "drift",
        )
        return {name: int(getattr(self, name)) for name in names}


UNKEYED_PREFIX = "id:"


def reference_key(entity: str, record: Mapping[str, Any]) -> str | None:
    """The mirror key of a SafetyAmp record: its natural key, or ``id:<id>`` for a record without
    one (a regional office site has no job number, a user no emp_id) — those are never written by
    the sync but still matter (home sites, uniqueness of emails and phones)."""
    if entity in REFERENCE_ENTITIES:
        name = record.get("name")
        return str(name).strip() if name else str(record.get("id"))
    key = core_plan.natural_key(entity, record)
    if key is None and record.get("id") is not None:
        return f"{UNKEYED_PREFIX}{record['id']}"
    return key


def _total_requests(client: Any) -> int:
    stats = getattr(client, "stats", None)
    if stats is None:
        return 0
    total = getattr(stats, "total_requests", None)
    if total is None and isinstance(stats, Mapping):
        total = stats.get("total_requests", stats.get("total", 0))
    return int(total or 0)


def _limiter_wait(client: Any) -> float:
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
        client: Any,
        store: Any,
        settings: SyncSettings,
        options: SinkOptions,
        log: logging.Logger | Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.options = options
        self.log = log or logging.getLogger(__name__)
        self.now = now
        self._fully_read: set[str] = set()
        self.drift: dict[str, int] = {}
        self._written: dict[tuple[str, str], dict] = {}

    # -- current state ---------------------------------------------------------------------------

    def _mirror_is_stale(self, entity: str) -> bool:
        read_at = self.store.mirror_read_at(entity)
        if read_at is None:
            return True
        if read_at.tzinfo is None:
            read_at = read_at.replace(tzinfo=UTC)
        return self.now() - read_at > self.options.mirror_max_age

    def full_read(self, entity: str) -> dict[str, dict]:
        before = self.store.mirror_records(entity)
        records = self.client.list(entity)
        by_key: dict[str, dict] = {}
        for record in records:
            key = reference_key(entity, record)
            if key is not None:
                by_key[key] = record
        open_intents = self.store.intents_open(entity)
        # Ledger first: a crash between the two steps leaves the intent open and the next full
        # read settles it again (the ledger check below keeps that from recording it twice).
        recovered = {i["key"] for i in open_intents if self._settle_intent(entity, i, before, by_key)}
        self.store.mirror_replace(entity, by_key, read_at=self.now())
        for intent in open_intents:
            self.store.intent_confirm(entity, intent["key"])
        self._fully_read.add(entity)
        if before:
            unexplained_before = {k: v for k, v in before.items() if k not in recovered}
            unexplained_after = {k: v for k, v in by_key.items() if k not in recovered}
            self.drift[entity] = self.drift.get(entity, 0) + _count_drift(unexplained_before, unexplained_after)
        self.log.info("Full read of SafetyAmp %s: %d records", entity, len(by_key))
        return by_key

    def current(self, entity: str) -> tuple[dict[str, dict], bool]:
        """The entity's current SafetyAmp records by natural key, and whether a full read happened."""
        if entity in self._fully_read:
            return self.store.mirror_records(entity), False
        reasons = []
        if self.options.force_full_read:
            reasons.append("reconcile run")
        if self._mirror_is_stale(entity):
            reasons.append("mirror older than the allowed age or empty")
        if self.store.intents_open(entity):
            reasons.append("unconfirmed write intents from an earlier run")
        if reasons:
            self.log.info("Reading SafetyAmp %s in full (%s)", entity, "; ".join(reasons))
            return self.full_read(entity), True
        return self.store.mirror_records(entity), False

    def _settle_intent(
        self, entity: str, intent: Mapping[str, Any], before: Mapping[str, dict], fresh: Mapping[str, dict]
    ) -> bool:
        """Record in the ledger a write of an earlier run that reached SafetyAmp although its answer
        was never recorded (process killed, store lost, connection dropped after sending).
        Returns True when the full read shows the write took effect."""
        key = str(intent["key"])
        record = fresh.get(key)
        if record is None:
            return False
        payload = intent.get("payload") or {}
        previous = before.get(key)
        if previous is not None and not _payload_applied(payload, previous, record):
            return False
        run_id = intent.get("run_id") or self.options.run_id
        if self.store.ledger_query(entity=entity, key=key, run_id=run_id, status="ok", limit=1):
            return True  # recorded already; only the confirmation was lost
        action = "create" if previous is None else ("deactivate" if _is_deactivation(payload) else "update")
        self.store.ledger_append(
            run_id=run_id,
            entity=entity,
            key=key,
            action=action,
            changed_fields=sorted(str(k) for k in payload),
            before=previous,
            after=record,
            status="ok",
            error=f"answer not recorded by run {run_id}; the write was found in SafetyAmp by run {self.options.run_id}",
        )
        self.log.warning(
            "%s %s %s of run %s reached SafetyAmp without its answer being recorded; ledger completed",
            entity, action, key, run_id,
        )
        return True

    def state_for_refs(self, entities: Sequence[str]) -> dict[str, list[dict]]:
        return {entity: list(self.current(entity)[0].values()) for entity in entities}

    # -- planning --------------------------------------------------------------------------------

    def was_read_in_full(self, entity: str) -> bool:
        """Whether this run replaced the entity's mirror with a full read of SafetyAmp."""
        return entity in self._fully_read

    def store_record(self, entity: str, key: str) -> dict | None:
        return self._written.get((entity, key))

    def _guard(self, entity: str, items: Sequence[Any], current: Mapping[str, dict]) -> None:
        if self.options.allow_mass_deactivation:
            return
        if entity == "users":
            active = sum(1 for r in current.values() if str(r.get("emp_id") or "").strip() and r.get("system_access"))
        else:
            active = sum(1 for r in current.values() if r.get("status") in (1, "1", True))
        reason = core_plan.mass_deactivation_reason(items, active, self.settings)
        if reason:
            planned = sum(1 for i in items if i.action == "deactivate")
            raise MassDeactivationBlocked(entity, planned, reason, active)

    # -- applying --------------------------------------------------------------------------------

    def _held(self, item: Any, failure: Mapping[str, Any] | None) -> bool:
        if not failure or failure.get("kind") != "rejected":
            return False
        if self.options.retry_failed or failure.get("retry_requested"):
            return False
        return failure.get("desired_hash") == item.desired_hash

    def _ledger(self, item: Any, status: str, *, after: Any = None, http_status: int | None = None, error: str | None = None) -> None:
        self.store.ledger_append(
            run_id=self.options.run_id,
            entity=item.entity,
            key=item.key,
            action=item.action,
            changed_fields=list(item.changed_fields or []),
            before=item.before,
            after=after if after is not None else item.after,
            status=status,
            http_status=http_status,
            error=error,
        )

    def _send(self, item: Any) -> dict:
        if item.action == "create":
            return self.client.create(item.entity, item.payload)
        return self.client.update(item.entity, item.target_id, item.payload, item.method or "PUT")

    def _record_change(self, report: SinkReport, item: Any, status: str, error: str | None = None) -> None:
        if len(report.changes) < CHANGE_TABLE_ROWS:
            fields = ", ".join(item.changed_fields or []) if item.action != "create" else "(new)"
            report.changes.append(
                {"action": item.action, "key": item.key, "fields": fields, "status": status, "error": mask_text(error or "")}
            )

    def _apply_one(self, item: Any, report: SinkReport, heal: Callable[[Any], Any | None]) -> str:
        """Send one write; returns "ok", "rejected", "transient" or "held"."""
        failure = self.store.failure_get(item.entity, item.key)
        if self._held(item, failure):
            report.held_failed += 1
            return "held"
        if self.options.dry_run:
            self._ledger(item, "planned")
            self._record_change(report, item, "planned (dry run)")
            return "ok"
        # Every write is recorded as an intent before it is sent and confirmed once its answer is
        # in the ledger and the mirror: an intent left open (crash, lost store, lost answer) makes
        # the next run re-read the entity and complete the ledger (see `_settle_intent`).
        self.store.intent_record(item.entity, item.key, self.options.run_id, item.payload)
        try:
            response = self._send(item)
        except ValidationRejected as exc:
            self.store.intent_confirm(item.entity, item.key)
            if item.action == "create" and _is_uniqueness_conflict(exc):
                healed = heal(item)
                if healed is not None and healed is not item:
                    report.healed += 1
                    return self._apply_healed(healed, report)
            return self._fail(item, report, "rejected", exc)
        except NotFound as exc:
            self.store.intent_confirm(item.entity, item.key)
            if item.action != "create":
                healed = heal(item)
                if healed is not None and healed is not item:
                    report.healed += 1
                    return self._apply_healed(healed, report)
            return self._fail(item, report, "rejected", exc)
        except (Unauthorized, Forbidden):
            self.store.intent_confirm(item.entity, item.key)
            raise  # a credential problem stops the sink: no record is held as rejected for it
        except AmbiguousWrite as exc:
            # The write may have reached SafetyAmp: the intent stays open, so the next run re-reads.
            return self._fail(item, report, "transient", exc)
        except ApiError as exc:
            kind = "rejected" if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429 else "transient"
            # A POST is only retried when it certainly did not arrive; a PATCH/PUT given up after
            # 5xx or lost connections may have been applied, so its intent stays open.
            if item.action == "create" or kind == "rejected":
                self.store.intent_confirm(item.entity, item.key)
            return self._fail(item, report, kind, exc)
        self._ledger(item, "ok", after=response, http_status=201 if item.action == "create" else 200)
        self.store.mirror_upsert(item.entity, item.key, response)
        self._written[(item.entity, item.key)] = response
        self.store.intent_confirm(item.entity, item.key)
        if failure:
            self.store.failure_clear(item.entity, item.key)
        self._record_change(report, item, "ok")
        if item.action == "create":
            report.created += 1
        elif item.action == "update":
            report.updated += 1
        else:
            report.deactivated += 1
        return "ok"

    def _apply_healed(self, item: Any, report: SinkReport) -> str:
        """Apply the re-plan of a record after a targeted re-read (once; no further healing)."""
        if item.action == "unchanged":
            report.unchanged += 1
            self.store.failure_clear(item.entity, item.key)
            return "ok"
        if item.action == "rejected":
            report.rejected_before_send += 1
            if len(report.rejections) < CHANGE_TABLE_ROWS:
                report.rejections.append({"key": item.key, "reason": mask_text(item.reason or "")})
            return "rejected"
        return self._apply_one(item, report, heal=lambda _: None)

    def _fail(self, item: Any, report: SinkReport, kind: str, exc: ApiError) -> str:
        message = mask_text(str(exc))
        fields: dict[str, Any] = {}
        if isinstance(exc, ValidationRejected):
            fields = {k: [mask_text(m) for m in v] for k, v in exc.errors.items()}
        self.store.failure_record(
            item.entity, item.key, reason=message, fields=fields, desired_hash=item.desired_hash, kind=kind
        )
        self._ledger(item, "failed", http_status=exc.status, error=message)
        self._record_change(report, item, "failed", message)
        report.failed += 1
        if kind == "transient":
            report.transient_failures += 1
        if len(report.failures) < CHANGE_TABLE_ROWS:
            report.failures.append({"key": item.key, "action": item.action, "kind": kind, "status": exc.status, "error": message})
        self.log.warning("%s %s %s failed (%s): %s", item.entity, item.action, item.key, kind, message)
        return kind

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

        refs = core_plan.RefIndex.from_state(state, self.settings)
        items = core_plan.plan_entity(entity, list(desired), list(current.values()), refs, self.settings)
        self._guard(entity, items, current)
        desired_by_key = {r.key: r for r in desired}

        def heal(item: Any) -> Any | None:
            fresh = self.full_read(entity)
            state[entity] = list(fresh.values())
            record = desired_by_key.get(item.key)
            if record is None:
                return None
            fresh_refs = core_plan.RefIndex.from_state(state, self.settings)
            replanned = core_plan.plan_entity(entity, [record], list(fresh.values()), fresh_refs, self.settings)
            return core_plan.resolve_deferred(replanned[0], fresh_refs) if replanned else None

        consecutive_transient = 0
        aborted = False
        transient_keys: list[str] = []
        deferred_keys: list[str] = []  # waiting for a parent; retried with the transient failures
        open_failures = {f["key"] for f in self.store.failures_open(entity)} if not self.options.dry_run else set()
        for item in items:
            if item.action == "unchanged":
                report.unchanged += 1
                if item.key in open_failures:  # in step again (fixed by hand, or the source changed back)
                    self.store.failure_clear(entity, item.key)
                continue
            if item.action == "rejected":
                report.rejected_before_send += 1
                if len(report.rejections) < CHANGE_TABLE_ROWS:
                    report.rejections.append({"key": item.key, "reason": mask_text(item.reason or "")})
                continue
            setattr(report, f"planned_{item.action}", getattr(report, f"planned_{item.action}") + 1)
            if aborted:
                continue
            item = core_plan.resolve_deferred(item, refs)
            if item.deferred and not self.options.dry_run:
                missing = ", ".join(f"{e} {k}" for e, k in item.deferred.values())
                report.rejected_before_send += 1
                self._record_change(report, item, "skipped", f"waits for {missing}, which was not created")
                deferred_keys.append(item.key)
                continue
            outcome = self._apply_one(item, report, heal)
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
        passes = 0
        while transient_keys and not aborted and not self.options.dry_run and passes < RETRY_PASSES:
            passes += 1
            progress, transient_keys, deferred_keys = self._second_pass(
                entity, transient_keys, deferred_keys, desired_by_key, state, report
            )
            if not progress:
                break
        report.drift = self.drift.get(entity, 0)
        report.api_calls = _total_requests(self.client) - calls_before
        report.rate_limit_wait_seconds = _limiter_wait(self.client) - wait_before
        report.seconds = time.monotonic() - started
        return report


    def _second_pass(
        self,
        entity: str,
        keys: Sequence[str],
        deferred_keys: Sequence[str],
        desired_by_key: Mapping[str, DesiredRecord],
        state: dict[str, list[dict]],
        report: SinkReport,
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
        items = core_plan.plan_entity(entity, list(desired_by_key.values()), list(fresh.values()), refs, self.settings)
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
            outcome = self._apply_one(item, report, heal=lambda _: None)
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


_UNIQUENESS_MESSAGES = ("already been taken", "already in use")


def _is_uniqueness_conflict(exc: ValidationRejected) -> bool:
    """SafetyAmp says a unique field (email, mobile phone, site code, cluster code) is taken:
    the record may already exist (created by hand, or by a run whose answer was lost)."""
    return any(text in message for messages in exc.errors.values() for message in messages for text in _UNIQUENESS_MESSAGES)


_VOLATILE_FIELDS = frozenset({"updated_at", "updated_by", "last_logged_in", "created_at", "created_by"})


def _count_drift(before: Mapping[str, dict], after: Mapping[str, dict]) -> int:
    """Records a full read found different from the mirror (edited, added or removed in SafetyAmp
    behind our back). Timestamps are ignored."""

    def stable(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in _VOLATILE_FIELDS}

    changed = sum(1 for key, record in after.items() if key in before and stable(before[key]) != stable(record))
    return changed + len(set(after) ^ set(before))


def _is_deactivation(payload: Mapping[str, Any]) -> bool:
    return payload.get("system_access") in (False, 0) or payload.get("status") in (0, "0", False)


def _payload_applied(payload: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """True when the fields of an update's payload that the record shows hold the sent values now
    and did not before (so the update, not something else, changed them)."""
    comparable = [k for k in payload if k in after]
    if not comparable or any(after.get(k) != payload[k] for k in comparable):
        return False
    return any(before.get(k) != payload[k] for k in comparable)


def masked_changes(report: SinkReport) -> list[dict]:
    return [mask_record(c) for c in report.changes]
