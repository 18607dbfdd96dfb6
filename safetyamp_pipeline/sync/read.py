"""Reading SafetyAmp's current state for the sink engine: the store's mirror, or a full read.

A full read replaces the entity's mirror, settles the write intents an earlier run left open (a
write that reached SafetyAmp without its answer being recorded is completed in the ledger) and
counts drift: records found different from what the mirror said.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.sync.ports import EngineStore, SafetyAmpApi
from safetyamp_pipeline.sync.report import SinkOptions

REFERENCE_ENTITIES = ("roles", "asset_types")
UNKEYED_PREFIX = "id:"
_VOLATILE_FIELDS = frozenset({"updated_at", "updated_by", "last_logged_in", "created_at", "created_by"})


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


def mirror_keyed(entity: str, records: Iterable[dict[str, Any]]) -> dict[str, dict]:
    """A full read's records by mirror key, whatever order the API listed them in. When several
    records share a natural key (left by the old service) the lowest id keeps the key, as in the
    planners (`core.plan.duplicate_keys`); the others stay in the mirror as ``id:<id>``, so that
    their e-mails and phones still count as taken."""
    records = list(records)
    others: set[str] = set()
    if entity not in REFERENCE_ENTITIES:
        others = {str(i) for dup in core_plan.duplicate_keys(entity, records) for i in dup.duplicate_ids}
    by_key: dict[str, dict] = {}
    for record in records:
        key = reference_key(entity, record)
        if key is None:
            continue
        if str(record.get("id")) in others:
            key = f"{UNKEYED_PREFIX}{record['id']}"
        elif key in by_key:  # a twin the planners ignore (soft-deleted, or a reference entity)
            kept, moved = sorted((by_key[key], record), key=_twin_order)
            by_key[key] = kept
            by_key[f"{UNKEYED_PREFIX}{moved.get('id')}"] = moved
            continue
        by_key[key] = record
    return by_key


def _twin_order(record: Mapping[str, Any]) -> tuple[bool, str]:
    return bool(record.get("deleted_at")), str(record.get("id"))


class MirrorReader:
    """The current SafetyAmp records of each entity, by mirror key; one instance per run."""

    def __init__(
        self,
        client: SafetyAmpApi,
        store: EngineStore,
        options: SinkOptions,
        log: logging.Logger | logging.LoggerAdapter | Any,
        now: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.store = store
        self.options = options
        self.log = log
        self.now = now
        self.fully_read: set[str] = set()
        self.drift: dict[str, int] = {}

    def _mirror_is_stale(self, entity: str) -> bool:
        read_at = self.store.mirror_read_at(entity)
        if read_at is None:
            return True
        if read_at.tzinfo is None:
            read_at = read_at.replace(tzinfo=UTC)
        return self.now() - read_at > self.options.mirror_max_age

    def full_read(self, entity: str) -> dict[str, dict]:
        before = self.store.mirror_records(entity)
        by_key = mirror_keyed(entity, self.client.list(entity))
        open_intents = self.store.intents_open(entity)
        # Ledger first: a crash between the two steps leaves the intent open and the next full
        # read settles it again (the ledger check below keeps that from recording it twice).
        recovered = {i["key"] for i in open_intents if self._settle_intent(entity, i, before, by_key)}
        self.store.mirror_replace(entity, by_key, read_at=self.now())
        for intent in open_intents:
            self.store.intent_confirm(entity, intent["key"])
        self.fully_read.add(entity)
        if before:
            unexplained_before = {k: v for k, v in before.items() if k not in recovered}
            unexplained_after = {k: v for k, v in by_key.items() if k not in recovered}
            self.drift[entity] = self.drift.get(entity, 0) + _count_drift(unexplained_before, unexplained_after)
        self.log.info("Full read of SafetyAmp %s: %d records", entity, len(by_key))
        return by_key

    def current(self, entity: str) -> tuple[dict[str, dict], bool]:
        """The entity's current SafetyAmp records by natural key, and whether a full read happened."""
        if entity in self.fully_read:
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

    def state_for_refs(self, entities: Sequence[str]) -> dict[str, list[dict]]:
        return {entity: list(self.current(entity)[0].values()) for entity in entities}

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
