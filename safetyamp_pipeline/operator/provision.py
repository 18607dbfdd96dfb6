"""Provision on demand: sync a few named records now, with the sinks' rules, guard, ledger and
failure handling, reading from SafetyAmp only those records (one GET each, never a list).

The desired records come from the caller (computed by ``core`` from fresh source rows); references
(sites, clusters, titles, roles, asset types, users) come from the store's mirror. Each record is
planned with ``core.plan`` against its freshly read SafetyAmp state and sent through the engine's
``Applier`` (intent, send, ledger, mirror, failure queue). No healing full read: a conflict is left
in the failure queue for the next sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from safetyamp_pipeline.clients.errors import NotFound
from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.operator.lookup import KINDS, Kind, find
from safetyamp_pipeline.sync.apply import Applier
from safetyamp_pipeline.sync.masking import mask_text, mask_value
from safetyamp_pipeline.sync.report import SinkOptions, SinkReport, active_count

# Config list -> the operator's word for its records; processed parents first.
CONFIG_KINDS = {"jobs": KINDS["site"], "employees": KINDS["employee"], "vehicles": KINDS["vehicle"]}
REFERENCES = {
    "sites": ("site_clusters",),
    "users": ("sites", "site_clusters", "user_titles", "roles"),
    "assets": ("users", "sites", "asset_types"),
}


class ProvisionBlocked(Exception):
    """The mass-deactivation guard stopped the request; nothing was written."""


@dataclass
class Provisioned:
    """What happened to one requested record."""

    entity: str
    requested: str
    key: str | None
    action: str  # create | update | deactivate | unchanged | rejected | not found
    status: str  # ok | planned | held | rejected | transient | skipped | unchanged | not found
    error: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)  # field, before, after

    def row(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "requested": self.requested, "key": self.key or "", "action": self.action,
            "status": self.status, "fields": ", ".join(c["field"] for c in self.changes), "error": mask_text(self.error),
        }


class Provisioner:
    def __init__(self, client: Any, store: Any, settings: SyncSettings, options: SinkOptions, log: Any) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.options = options
        self.log = log
        self.applier = Applier(client, store, options, log)
        self.reports: dict[str, SinkReport] = {}

    def provision(
        self, kind: Kind, wanted: Sequence[str], desired: Sequence[DesiredRecord], sources: Mapping[str, list[dict]] | None = None
    ) -> list[Provisioned]:
        entity = kind.entity
        report = self.reports.setdefault(entity, SinkReport(entity=entity))
        mirror = self.store.mirror_records(entity)
        results: list[Provisioned] = []
        chosen: dict[str, tuple[str, DesiredRecord]] = {}
        current = dict(mirror)
        for name in dict.fromkeys(w.strip() for w in wanted if w.strip()):
            match = find(kind, name, desired, mirror, sources or {})
            if match.desired is None:
                results.append(Provisioned(entity, name, match.key, "not found", "not found",
                                           f"{kind.label} {name!r} is not in the source data"))
                continue
            chosen[match.desired.key] = (name, match.desired)
            if match.mirror_key is not None and match.mirror and match.mirror.get("id") is not None:
                current[match.mirror_key] = self._read_one(entity, match.mirror_key, match.mirror["id"])
        current = {k: v for k, v in current.items() if v is not None}
        state = {ref: list(self.store.mirror_records(ref).values()) for ref in REFERENCES[entity]}
        state[entity] = list(current.values())
        refs = core_plan.RefIndex.from_state(state, self.settings)
        records = [record for _, record in chosen.values()]
        items = [i for i in core_plan.plan_entity(entity, records, state[entity], refs, self.settings) if i.key in chosen]
        self._guard(entity, items, current)
        for item in items:
            results.append(self._apply(chosen[item.key][0], item, refs, report))
        if entity == "assets" and not self.options.dry_run:
            # As the sink does: the assets the sync created or matched are its own (only those retire).
            ids = {str(i) for i in core_plan.matched_asset_ids(items)}
            ids |= {str(r["id"]) for (e, _), r in self.applier.written.items() if e == entity and r.get("id") is not None}
            if ids:
                self.store.owned_add(entity, ids)
        return results

    def _read_one(self, entity: str, key: str, record_id: Any) -> dict | None:
        """The record as SafetyAmp has it now (None when it was deleted); the mirror follows."""
        try:
            record = self.client.get(entity, record_id)
        except NotFound:
            if not self.options.dry_run:
                self.store.mirror_delete(entity, key)
            return None
        if not self.options.dry_run:
            self.store.mirror_upsert(entity, key, record)
        return record

    def _guard(self, entity: str, items: Sequence[core_plan.PlanItem], current: Mapping[str, dict]) -> None:
        if self.options.allow_mass_deactivation:
            return
        active = active_count(entity, current)
        reason = core_plan.mass_deactivation_reason(items, active, self.settings)
        if reason:
            raise ProvisionBlocked(
                f"{entity}: {reason}; nothing was written. If intended, re-run with the run tag allow_mass_deactivation=true."
            )

    def _apply(self, requested: str, item: core_plan.PlanItem, refs: core_plan.RefIndex, report: SinkReport) -> Provisioned:
        entity = item.entity
        if item.action == "unchanged":
            report.unchanged += 1
            if not self.options.dry_run and self.store.failure_get(entity, item.key):
                self.store.failure_clear(entity, item.key)
            return Provisioned(entity, requested, item.key, "unchanged", "unchanged")
        if item.action == "rejected":
            report.add_rejection(item.key, item.reason)
            return Provisioned(entity, requested, item.key, "rejected", "rejected", item.reason or "")
        item = core_plan.resolve_deferred(item, refs)
        changes = _changes(item)
        setattr(report, f"planned_{item.action}", getattr(report, f"planned_{item.action}") + 1)
        if item.deferred and not self.options.dry_run:
            missing = ", ".join(f"{e} {k}" for e, k in item.deferred.values())
            report.rejected_before_send += 1
            return Provisioned(entity, requested, item.key, item.action, "skipped",
                               f"waits for {missing}, which is not in SafetyAmp yet (name it too, or run the sync)", changes)
        outcome = self.applier.apply_one(item, report, heal=lambda _: None)
        status = "planned" if self.options.dry_run and outcome == "ok" else outcome
        error = ""
        if outcome in ("rejected", "transient"):
            failure = self.store.failure_get(entity, item.key) or {}
            error = str(failure.get("reason") or "")
        elif outcome == "held":
            error = "held after SafetyAmp rejected it (retry from the failure queue)"
        return Provisioned(entity, requested, item.key, item.action, status, error, changes)


def _changes(item: core_plan.PlanItem) -> list[dict[str, Any]]:
    names = list(item.changed_fields) if item.action != "create" else sorted((item.payload or {}).keys())
    return [{"field": name, "before": item.before.get(name), "after": item.after.get(name, (item.payload or {}).get(name))}
            for name in names]


def change_rows(results: Sequence[Provisioned]) -> list[dict[str, Any]]:
    """Before/after per changed field, masked by field name (person data)."""
    return [
        {"entity": r.entity, "key": r.key or "", "field": c["field"],
         "before": mask_value(c["field"], c["before"]), "after": mask_value(c["field"], c["after"])}
        for r in results for c in r.changes
    ]
