"""Cluster planner: the root matched by name, department/region clusters by external code."""

from __future__ import annotations

from ..models import DesiredRecord, RecordId
from ..normalize import as_int, clean_text
from ..refs import RefIndex, index_key
from ..settings import SyncSettings
from .common import Digest, Normalizer, PlanItem, RecordsByKey, code_norm, diff, rejected, unchanged

_CLUSTER_NORM: dict[str, Normalizer] = {"name": clean_text, "external_code": code_norm, "parent_cluster_id": as_int}


def _parents_first(records: list[DesiredRecord]) -> list[DesiredRecord]:
    keys = {index_key("site_clusters", r.key): r for r in records}

    def depth(record: DesiredRecord) -> int:
        level, seen = 0, {record.key}
        parent = record.refs.get("parent")
        while parent is not None and level < 50:
            level += 1
            up = keys.get(index_key("site_clusters", parent))
            if up is None or up.key in seen:
                break
            seen.add(up.key)
            parent = up.refs.get("parent")
        return level

    return sorted(records, key=depth)


def plan_clusters(records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    desired_keys = {index_key("site_clusters", r.key) for r in records if not r.rejected}
    adopted: set[RecordId] = set()
    items: list[PlanItem] = []
    for rec in _parents_first(records):
        digest: Digest = rec  # hashed when item.desired_hash is first read
        if rec.rejected:
            items.append(rejected(rec, rec.rejected, digest))
            continue
        name = clean_text(rec.fields.get("name"))
        if name is None:
            items.append(rejected(rec, f"cluster {rec.key}: field name is empty", digest))
            continue
        existing = by_key.get(index_key("site_clusters", rec.key) or "")
        parent_key = rec.refs.get("parent")
        if existing is None and parent_key is not None:
            candidate = refs.unkeyed_clusters_by_name.get(name.casefold())
            if candidate is not None and candidate.get("parent_cluster_id") is not None and candidate["id"] not in adopted:
                existing = candidate  # legacy cluster without external_code: adopt it instead of creating a twin
                adopted.add(candidate["id"])
        if parent_key is None:  # the root: matched by name, never rewritten
            if existing is not None:
                items.append(unchanged(rec, digest, existing.get("id")))
            else:
                payload = {"name": name, "osha_establishment": rec.fields.get("osha_establishment", settings.osha_establishment)}
                items.append(PlanItem("site_clusters", rec.key, "create", payload=payload, method="POST",
                                      changed_fields=sorted(payload), after=dict(payload), desired_hash=digest))
            continue
        parent_id = as_int(refs.id_of("site_clusters", parent_key))
        deferred: dict[str, list[str]] = {}
        if parent_id is None:
            if index_key("site_clusters", parent_key) not in desired_keys:
                items.append(rejected(rec, f"cluster {rec.key}: field parent_cluster_id: parent cluster {parent_key!r} is not in SafetyAmp", digest))
                continue
            deferred = {"parent_cluster_id": ["site_clusters", parent_key]}
        want = {"name": name, "external_code": rec.fields.get("external_code"), "parent_cluster_id": parent_id}
        if existing is None:
            payload = {**want, "osha_establishment": rec.fields.get("osha_establishment", settings.osha_establishment)}
            items.append(PlanItem("site_clusters", rec.key, "create", payload=payload, method="POST",
                                  changed_fields=sorted(payload), after=dict(payload), desired_hash=digest, deferred=deferred))
            continue
        changed, before, after = diff(want, existing, _CLUSTER_NORM)
        if deferred and "parent_cluster_id" not in changed:
            changed.append("parent_cluster_id")
            before["parent_cluster_id"], after["parent_cluster_id"] = existing.get("parent_cluster_id"), None
        if not changed:
            items.append(unchanged(rec, digest, existing.get("id")))
            continue
        osha = existing.get("osha_establishment")
        payload = {**want, "osha_establishment": settings.osha_establishment if osha is None else osha}
        items.append(PlanItem("site_clusters", rec.key, "update", target_id=existing.get("id"), payload=payload,
                              method="PUT", changed_fields=changed, before=before, after=after,
                              desired_hash=digest, deferred=deferred))
    return items

