"""Vehicle asset planner: Samsara vehicles by serial, and retiring the ones Samsara stopped listing."""

from __future__ import annotations

from ..models import DesiredRecord, desired_hash
from ..normalize import CODE_MAX, as_int, clean_text
from ..refs import RefIndex, index_key, natural_key
from ..settings import SyncSettings
from .common import Normalizer, PlanItem, RecordsByKey, desc_norm, diff, rejected, unchanged

_ASSET_NORM: dict[str, Normalizer] = {
    "name": clean_text,
    "code": lambda v: clean_text(v, CODE_MAX),
    "model": clean_text,
    "description": desc_norm,
    "status": as_int,
    "site_id": as_int,
    "asset_type_id": as_int,
    "current_user_id": lambda v: clean_text(v, CODE_MAX),
}
_ASSET_BODY = ("name", "code", "serial", "model", "description", "status", "site_id", "asset_type_id", "current_user_id")


def plan_assets(records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    items: list[PlanItem] = []
    asset_type = refs.vehicle_asset_type()
    site = refs.site_by_name(settings.vehicle_site_name)
    type_id = as_int(asset_type.get("id")) if asset_type else None
    site_id = as_int(site.get("id")) if site else (as_int(asset_type.get("site_id")) if asset_type else None)
    setup_problem = None
    if type_id is None:
        setup_problem = f"field asset_type_id: asset type {settings.vehicle_asset_type_name!r} is not in SafetyAmp"
    elif site_id is None:
        setup_problem = f"field site_id: site {settings.vehicle_site_name!r} is not in SafetyAmp"
    desired_keys: set[str] = set()
    for rec in records:
        digest = desired_hash(rec)
        key = index_key("assets", rec.key)
        if rec.rejected:
            items.append(rejected(rec, rec.rejected, digest))
            if key and not key.startswith(("SAMSARA:", "ROW#")):
                desired_keys.add(key)
            continue
        desired_keys.add(key or "")
        existing = by_key.get(key or "")
        if setup_problem:
            items.append(rejected(rec, f"vehicle {rec.key}: {setup_problem}", digest, existing.get("id") if existing else None))
            continue
        notes: list[str] = []
        driver = rec.refs.get("current_user")
        user_id = None
        if driver:
            user = refs.record("users", driver)
            user_id = user.get("id") if user else None
            if user_id is None:
                notes.append(f"driver employee {driver} has no SafetyAmp user: current_user_id sent as null")
        want = {
            "name": rec.fields.get("name"),
            "code": rec.fields.get("code"),
            "model": rec.fields.get("model"),
            "description": rec.fields.get("description"),
            "status": rec.fields.get("status", settings.vehicle_active_status),
            "site_id": site_id,
            "asset_type_id": type_id,
            "current_user_id": user_id,
        }
        body = {**want, "serial": rec.fields.get("serial")}
        for extra in ("vin", "year"):
            if rec.fields.get(extra) is not None:
                body[extra] = rec.fields[extra]
        if existing is None:
            payload = {k: v for k, v in body.items() if v is not None}
            items.append(PlanItem("assets", rec.key, "create", payload=payload, method="POST", changed_fields=sorted(payload),
                                  after=dict(payload), desired_hash=digest, notes=notes))
            continue
        changed, before, after = diff(want, existing, _ASSET_NORM)
        if not changed:
            items.append(unchanged(rec, digest, existing.get("id"), notes))
            continue
        items.append(PlanItem("assets", rec.key, "update", target_id=existing.get("id"), payload=body, method="PUT",
                              changed_fields=changed, before=before, after=after, desired_hash=digest, notes=notes))
    if type_id is not None:
        items.extend(_retire_vehicles(by_key, desired_keys, type_id, settings))
    return items


def _retire_vehicles(by_key, desired_keys: set[str], type_id: int, settings: SyncSettings) -> list[PlanItem]:
    """Assets of the vehicle type whose serial left Samsara become status `vehicle_retired_status`."""
    items: list[PlanItem] = []
    retired = settings.vehicle_retired_status
    for key, existing in sorted(by_key.items()):
        if key in desired_keys or as_int(existing.get("asset_type_id")) != type_id:
            continue
        natural = natural_key("assets", existing) or key
        digest = desired_hash(DesiredRecord("assets", natural, {"status": retired}, deactivate=True))
        if as_int(existing.get("status")) == retired:
            items.append(PlanItem("assets", natural, "unchanged", target_id=existing.get("id"), desired_hash=digest,
                                  reason="vehicle no longer in Samsara; already retired"))
            continue
        payload = {name: existing.get(name) for name in _ASSET_BODY}
        payload["status"] = retired
        items.append(PlanItem("assets", natural, "deactivate", target_id=existing.get("id"), payload=payload, method="PUT",
                              changed_fields=["status"], before={"status": existing.get("status")}, after={"status": retired},
                              desired_hash=digest, reason="vehicle no longer in Samsara"))
    return items
