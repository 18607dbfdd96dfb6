"""Vehicle asset planner: Samsara vehicles by serial, and retiring the ones Samsara stopped listing.

Only assets the sync owns (created, or matched to a Samsara vehicle by serial, in some run) are
ever retired: the caller passes their ids as `owned_asset_ids` (the sync keeps them across runs;
`matched_asset_ids` gives this plan's). An asset added by hand (a rental) is never retired.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ..models import DesiredRecord, Record, RecordId
from ..normalize import CODE_MAX, as_int, clean_text
from ..refs import RefIndex, index_key, natural_key
from ..settings import SyncSettings
from .common import Digest, Normalizer, PlanItem, RecordsByKey, desc_norm, diff, rejected, unchanged

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
# Writable asset fields the sync does not set (external-apis.md §1.4 "Asset"); a PUT carries them over.
KEPT_ON_PUT = ("location_id",)
_ASSET_BODY = ("name", "code", "serial", "model", "description", "status", "site_id", "asset_type_id", "current_user_id")


def plan_assets(
    records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings,
    owned_asset_ids: Collection[RecordId] | None = None,
) -> list[PlanItem]:
    """`owned_asset_ids`: SafetyAmp ids of the assets the sync created or matched from Samsara;
    None (the default) retires nothing."""
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
        digest: Digest = rec  # hashed when item.desired_hash is first read
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
        items.append(PlanItem("assets", rec.key, "update", target_id=existing.get("id"), payload={**_kept_on_put(existing), **body}, method="PUT",
                              changed_fields=changed, before=before, after=after, desired_hash=digest, notes=notes))
    if type_id is not None and owned_asset_ids:
        owned = {str(asset_id) for asset_id in owned_asset_ids}
        items.extend(_retire_vehicles(by_key, desired_keys, type_id, owned, settings))
    return items


def _retire_vehicles(
    by_key: RecordsByKey, desired_keys: set[str], type_id: int, owned: set[str], settings: SyncSettings
) -> list[PlanItem]:
    """Owned assets of the vehicle type whose serial left Samsara become status `vehicle_retired_status`."""
    items: list[PlanItem] = []
    retired = settings.vehicle_retired_status
    for key, existing in sorted(by_key.items()):
        if key in desired_keys or as_int(existing.get("asset_type_id")) != type_id or str(existing.get("id")) not in owned:
            continue
        natural = natural_key("assets", existing) or key
        digest: Digest = DesiredRecord("assets", natural, {"status": retired}, deactivate=True)
        if as_int(existing.get("status")) == retired:
            items.append(PlanItem("assets", natural, "unchanged", target_id=existing.get("id"), desired_hash=digest,
                                  reason="vehicle no longer in Samsara; already retired"))
            continue
        payload = {name: existing.get(name) for name in _ASSET_BODY}
        payload.update(_kept_on_put(existing))
        payload["status"] = retired
        items.append(PlanItem("assets", natural, "deactivate", target_id=existing.get("id"), payload=payload, method="PUT",
                              changed_fields=["status"], before={"status": existing.get("status")}, after={"status": retired},
                              desired_hash=digest, reason="vehicle no longer in Samsara"))
    return items


def _kept_on_put(existing: Record) -> dict[str, object]:
    """Writable asset fields the sync does not set, with SafetyAmp's value: a PUT replaces."""
    return {name: existing[name] for name in KEPT_ON_PUT if existing.get(name) is not None}


def matched_asset_ids(items: Iterable[PlanItem]) -> set[RecordId]:
    """Ids of the SafetyAmp assets this plan matched to a Samsara vehicle (or retires). Together
    with the ids of the assets it creates, the sync keeps them as its owned assets."""
    return {item.target_id for item in items if item.entity == "assets" and item.target_id is not None}
