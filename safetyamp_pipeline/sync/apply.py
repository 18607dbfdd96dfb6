"""Applying planned writes: intent -> send -> ledger -> mirror, healing, and recording failures.

Every write is recorded as an intent before it is sent and confirmed once its answer is in the
ledger and the mirror: an intent left open (crash, lost store, lost answer) makes the next run
re-read the entity and complete the ledger (see `sync.read.MirrorReader._settle_intent`).

Inside `Applier.batching()` the store work is batched: `prepare` records the intents of the next
writes in one transaction before any of them is sent, and the answers' ledger rows, mirror upserts
and intent confirmations wait in memory until the next `flush` (one transaction per batch, at least
once a second). A crash mid-batch leaves those intents open, which the next run settles by a re-read
exactly as for a single lost answer; an intent recorded for a write never sent settles as "not
applied".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

from safetyamp_pipeline.clients.errors import (
    AmbiguousWrite,
    ApiError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationRejected,
)
from safetyamp_pipeline.core.plan import PlanItem
from safetyamp_pipeline.sync.batch import StoreBatch
from safetyamp_pipeline.sync.masking import mask_text
from safetyamp_pipeline.sync.ports import EngineStore, SafetyAmpApi
from safetyamp_pipeline.sync.read import UNKEYED_PREFIX
from safetyamp_pipeline.sync.report import CHANGE_TABLE_ROWS, SinkOptions, SinkReport

_UNIQUENESS_MESSAGES = ("already been taken", "already in use")

Outcome = Literal["ok", "rejected", "transient", "held"]
# re-read after a conflict and re-plan one record; None when there is nothing better to send,
# LATER when what this run knows cannot explain the conflict (retried after the next read)
LATER = "later"
Heal = Callable[[PlanItem], "PlanItem | Literal['later'] | None"]
BATCH_SIZE = 50  # writes whose intents are recorded in one transaction
BATCH_SECONDS = 1.0  # answers wait in memory at most about this long before their commit


class Applier:
    """Sends one entity's writes and records each attempt; one instance per run."""

    def __init__(self, client: SafetyAmpApi, store: EngineStore, options: SinkOptions, log: logging.Logger | Any) -> None:
        self.client = client
        self.store = store
        self.options = options
        self.log = log
        self.written: dict[tuple[str, str], dict] = {}
        self._batch: StoreBatch | None = None  # store work waiting for the batch's commit
        # intents recorded ahead: key -> (payload, the record's failure row then)
        self._prepared: dict[tuple[str, str], tuple[Any, dict[str, Any] | None]] = {}
        self._batch_started = time.monotonic()

    # -- batching ------------------------------------------------------------------------------------

    @contextmanager
    def batching(self) -> Iterator[None]:
        """Batch the store work of the writes applied inside (see the module docstring)."""
        if self._batch is not None:
            yield
            return
        self._batch = StoreBatch()
        self._batch_started = time.monotonic()
        try:
            yield
        except BaseException:
            try:
                self._finish()
            except Exception:  # the store may be what failed: the original error matters
                self.log.warning("could not record the answers of the last batch; the next run re-reads")
            raise
        else:
            self._finish()
        finally:
            self._batch = None
            self._prepared.clear()

    def _finish(self) -> None:
        # recorded ahead but never sent (aborted, or re-planned after a re-read)
        if self._batch is not None:
            self._batch.confirms.extend(self._prepared)
        self._prepared.clear()
        self.flush()

    def _transaction(self) -> Any:
        begin = getattr(self.store, "transaction", None)
        return begin() if begin is not None else nullcontext()

    def flush(self) -> None:
        """Commit the store work waiting in the batch (before the store is read again)."""
        if self._batch:
            with self._transaction():
                self._batch.write(self.store)
        self._batch_started = time.monotonic()

    def forget_prepared(self) -> None:
        """A full read settles (closes) every open intent, also those recorded ahead: the writes
        not yet sent record theirs again."""
        self._prepared.clear()

    def is_prepared(self, item: PlanItem) -> bool:
        return (item.entity, item.key) in self._prepared

    def prepare(self, items: Sequence[PlanItem]) -> None:
        """Record, in one transaction with the batch so far, the intents of writes about to be sent."""
        if self._batch is None or self.options.dry_run:
            return
        fresh = {(i.entity, i.key): i for i in items if i.payload is not None and not self.is_prepared(i)}
        entities = {entity for entity, _ in fresh}
        failures = {
            (entity, key): failure
            for entity in entities
            for key, failure in self.store.failures_get(entity, [k for e, k in fresh if e == entity]).items()
        }
        with self._transaction():
            self._batch.write(self.store)
            self.store.intents_record_many(
                self.options.run_id, [(i.entity, i.key, i.payload) for i in fresh.values()]
            )
        self._batch_started = time.monotonic()
        for pair, item in fresh.items():
            self._prepared[pair] = (item.payload, failures.get(pair))

    def _held(self, item: PlanItem, failure: Mapping[str, Any] | None) -> bool:
        if not failure or failure.get("kind") != "rejected":
            return False
        if self.options.retry_failed or failure.get("retry_requested"):
            return False
        return failure.get("desired_hash") == item.desired_hash

    def _ledger(self, item: PlanItem, status: str, *, after: Any = None, http_status: int | None = None, error: str | None = None) -> None:
        entry: dict[str, Any] = dict(
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
        if self._batch is not None:
            self._batch.ledger.append(entry)
        else:
            self.store.ledger_append_many([entry])

    def _send(self, item: PlanItem) -> dict:
        if item.payload is None:
            raise ValueError(f"{item.entity} {item.key}: a planned {item.action} without a payload")
        if item.action == "create":
            return self.client.create(item.entity, item.payload)
        if item.target_id is None:
            raise ValueError(f"a SafetyAmp {item.entity} id is required")
        return self.client.update(item.entity, item.target_id, item.payload, item.method or "PUT")

    def apply_one(self, item: PlanItem, report: SinkReport, heal: Heal) -> Outcome:
        """Send one write; returns "ok", "rejected", "transient" or "held"."""
        prepared = self._prepared.pop((item.entity, item.key), None)
        failure = prepared[1] if prepared is not None else self.store.failure_get(item.entity, item.key)
        if self._held(item, failure):
            if prepared is not None and self._batch is not None:
                self._batch.confirms.append((item.entity, item.key))  # recorded ahead, not sent
            report.held_failed += 1
            return "held"
        if self.options.dry_run:
            self._ledger(item, "planned")
            report.add_change(item, "planned (dry run)")
            return "ok"
        if prepared is None or prepared[0] != item.payload:
            self.store.intent_record(item.entity, item.key, self.options.run_id, item.payload)
        try:
            response = self._send(item)
        except ValidationRejected as exc:
            self.store.intent_confirm(item.entity, item.key)
            if item.action == "create" and _is_uniqueness_conflict(exc):
                return self._heal(item, report, heal, exc)
            return self.fail(item, report, "rejected", exc)
        except NotFound as exc:
            self.store.intent_confirm(item.entity, item.key)
            if item.action != "create":
                return self._heal(item, report, heal, exc)
            return self.fail(item, report, "rejected", exc)
        except (Unauthorized, Forbidden):
            self.store.intent_confirm(item.entity, item.key)
            raise  # a credential problem stops the sink: no record is held as rejected for it
        except AmbiguousWrite as exc:
            # The write may have reached SafetyAmp: the intent stays open, so the next run re-reads.
            return self.fail(item, report, "transient", exc)
        except ApiError as exc:
            kind = "rejected" if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429 else "transient"
            # A POST is only retried when it certainly did not arrive; a PATCH/PUT given up after
            # 5xx or lost connections may have been applied, so its intent stays open.
            if item.action == "create" or kind == "rejected":
                self.store.intent_confirm(item.entity, item.key)
            return self.fail(item, report, kind, exc)
        self._ledger(item, "ok", after=response, http_status=201 if item.action == "create" else 200)
        # An adopted record (a hand-made site or cluster without its code) was mirrored under
        # `id:<id>`; now that it carries its natural key, that entry goes.
        unkeyed = f"{UNKEYED_PREFIX}{item.target_id}" if item.target_id is not None else None
        self.written[(item.entity, item.key)] = response
        if self._batch is None:
            self.store.mirror_upsert(item.entity, item.key, response, replaces=unkeyed)
            self.store.intent_confirm(item.entity, item.key)
            if failure:
                self.store.failure_clear(item.entity, item.key)
        else:
            self._batch.mirror_upsert(item.entity, item.key, response, unkeyed)
            self._batch.confirms.append((item.entity, item.key))
            if failure:
                self._batch.clears.append((item.entity, item.key))
            if time.monotonic() - self._batch_started >= BATCH_SECONDS:
                self.flush()
        report.add_change(item, "ok")
        if item.action == "create":
            report.created += 1
        elif item.action == "update":
            report.updated += 1
        else:
            report.deactivated += 1
        return "ok"

    def _heal(self, item: PlanItem, report: SinkReport, heal: Heal, exc: ApiError) -> Outcome:
        """SafetyAmp refused a write because its state is not what the plan saw (a duplicate on
        create, a record gone on update): re-plan the record on a re-read and apply that once."""
        self.flush()  # the re-plan reads the mirror
        healed = heal(item)
        if healed == LATER:
            return self.fail(item, report, "transient", exc, note="not explained by this run's re-read; retried after another read")
        if healed is None or healed is item or isinstance(healed, str):
            return self.fail(item, report, "rejected", exc)
        if healed.action == "rejected":
            # Still a failure of this write, not a rejection before sending: it reaches the
            # ledger and the failures table, and the sink's writes_succeeded check goes red.
            return self.fail(item, report, "rejected", exc, note=f"after a re-read: {healed.reason or 'not sendable'}")
        report.healed += 1
        return self.apply_healed(healed, report)

    def apply_healed(self, item: PlanItem, report: SinkReport) -> Outcome:
        """Apply the re-plan of a record after a targeted re-read (once; no further healing)."""
        if item.action == "unchanged":
            report.unchanged += 1
            self.store.failure_clear(item.entity, item.key)
            return "ok"
        if item.action == "rejected":
            report.add_rejection(item.key, item.reason)
            return "rejected"
        return self.apply_one(item, report, heal=lambda _: None)

    def fail(
        self,
        item: PlanItem,
        report: SinkReport,
        kind: Literal["rejected", "transient"],
        exc: ApiError,
        note: str | None = None,
    ) -> Outcome:
        message = mask_text(f"{exc}; {note}" if note else str(exc))
        fields: dict[str, Any] = {}
        if isinstance(exc, ValidationRejected):
            fields = {k: [mask_text(m) for m in v] for k, v in exc.errors.items()}
        self.store.failure_record(
            item.entity, item.key, reason=message, fields=fields, desired_hash=item.desired_hash, kind=kind
        )
        self._ledger(item, "failed", http_status=exc.status, error=message)
        report.add_change(item, "failed", message)
        report.failed += 1
        if kind == "transient":
            report.transient_failures += 1
        if len(report.failures) < CHANGE_TABLE_ROWS:
            report.failures.append({"key": item.key, "action": item.action, "kind": kind, "status": exc.status, "error": message})
        self.log.warning("%s %s %s failed (%s): %s", item.entity, item.action, item.key, kind, message)
        return kind


def _is_uniqueness_conflict(exc: ValidationRejected) -> bool:
    """SafetyAmp says a unique field (email, mobile phone, site code, cluster code) is taken:
    the record may already exist (created by hand, or by a run whose answer was lost)."""
    return any(text in message for messages in exc.errors.values() for message in messages for text in _UNIQUENESS_MESSAGES)
