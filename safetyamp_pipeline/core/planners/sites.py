"""Site planner: one site per job, keyed by ext_id; legacy sites without ext_id are adopted by name."""

from __future__ import annotations

from ..models import DesiredRecord, RecordId
from ..normalize import as_int, clean_state, clean_text, clean_zip
from ..refs import RefIndex, index_key
from ..settings import SyncSettings
from .common import Digest, Normalizer, PlanItem, RecordsByKey, code_norm, diff, rejected, unchanged

ADDRESS_FIELDS = ("street", "city", "state", "zip_code")
# Writable site fields the sync does not set (external-apis.md §1.4 "Site"); a PUT carries them over.
KEPT_ON_PUT = ("street2", "country", "timezone", "latitude", "longitude", "naics_code", "industry_description",
               "em_enabled", "em_weather_override")

_SITE_NORM: dict[str, Normalizer] = {
    "name": clean_text,
    "cluster_id": as_int,
    "street": clean_text,
    "city": clean_text,
    "state": clean_state,
    "zip_code": clean_zip,
    "ext_id": code_norm,
}


def plan_sites(records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    adopted: set[RecordId] = set()
    items: list[PlanItem] = []
    for rec in records:
        digest: Digest = rec  # hashed when item.desired_hash is first read
        if rec.rejected:
            items.append(rejected(rec, rec.rejected, digest))
            continue
        cluster_key = rec.refs.get("cluster")
        cluster_id = as_int(refs.id_of("site_clusters", cluster_key))
        existing = by_key.get(index_key("sites", rec.key) or "")
        if cluster_id is None:
            items.append(rejected(rec, f"site {rec.key}: field cluster_id: cluster {cluster_key!r} is not in SafetyAmp", digest,
                                   existing.get("id") if existing else None))
            continue
        f = rec.fields
        name = clean_text(f.get("name"))
        if existing is None and name:
            candidate = refs.unkeyed_sites_by_name.get(name.casefold())
            if candidate is not None and candidate["id"] not in adopted:
                existing = candidate  # legacy site created without ext_id: adopt it
                adopted.add(candidate["id"])
        want = {"name": name, "ext_id": f.get("ext_id"), "cluster_id": cluster_id}
        address = {part: f.get(part) for part in ADDRESS_FIELDS}
        if existing is None:
            placeholders = _placeholders(settings)
            payload = {**want, **{part: value or placeholders[part] for part, value in address.items()},
                       "country": f.get("country"), "timezone": f.get("timezone")}
            payload = {k: v for k, v in payload.items() if v is not None}
            items.append(PlanItem("sites", rec.key, "create", payload=payload, method="POST",
                                  changed_fields=sorted(payload), after=dict(payload), desired_hash=digest))
            continue
        # An address part Vista leaves empty is not desired: SafetyAmp's value stands.
        want.update((part, value) for part, value in address.items() if value is not None)
        changed, before, after = diff(want, existing, _SITE_NORM)
        if not changed:
            items.append(unchanged(rec, digest, existing.get("id")))
            continue
        # PUT replaces the record: every writable field the sync does not set is sent back with
        # SafetyAmp's own value, so a PUT changes exactly the changed fields.
        kept = {name: existing[name] for name in (*ADDRESS_FIELDS, *KEPT_ON_PUT) if existing.get(name) is not None}
        payload = {**kept, **want}
        for name in ("country", "timezone"):
            if not existing.get(name) and f.get(name) is not None:
                payload[name] = f.get(name)
        items.append(PlanItem("sites", rec.key, "update", target_id=existing.get("id"), payload=payload, method="PUT",
                              changed_fields=changed, before=before, after=after, desired_hash=digest))
    return items


def _placeholders(settings: SyncSettings) -> dict[str, str | None]:
    """The address a site is created with when Vista has none (SafetyAmp requires one)."""
    return {
        "street": settings.placeholder_street,
        "city": settings.placeholder_city,
        "state": clean_state(settings.default_state),
        "zip_code": settings.placeholder_zip,
    }
