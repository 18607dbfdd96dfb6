"""Reconciliation plan: desired records vs what SafetyAmp holds -> exact writes.

`plan_entity` gives one PlanItem per desired record (plus retire intents for vehicles gone from
Samsara): create / update (changed fields only, compared after normalizing both sides the same
way) / deactivate / unchanged / rejected (with the reason), with the exact request body.
`apply_plan` simulates the server so that plan -> apply -> plan can be checked to write nothing.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .models import DesiredRecord, DesiredSet, desired_hash
from .normalize import (
    CODE_MAX,
    DESCRIPTION_MAX,
    as_bool,
    as_int,
    clean_country,
    clean_state,
    clean_text,
    clean_zip,
    email_key,
    format_date,
    normalize_gender,
    normalize_phone,
    title_key,
)
from .perf import without_gc
from .refs import RefIndex, _id_order, _is_live, index_key, natural_key
from .settings import SyncSettings
from .uniqueness import Claim, arbitrate

__all__ = [
    "PlanItem",
    "RefIndex",
    "WRITE_ACTIONS",
    "active_drop_reason",
    "apply_plan",
    "mass_deactivation_reason",
    "natural_key",
    "plan_entity",
    "resolve_deferred",
]

WRITE_ACTIONS = frozenset({"create", "update", "deactivate"})


@dataclass
class PlanItem:
    entity: str
    key: str
    action: str  # create | update | deactivate | unchanged | rejected
    target_id: Any = None
    payload: dict[str, Any] | None = None
    method: str | None = None  # POST | PATCH | PUT | None
    changed_fields: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    desired_hash: str | None = None
    notes: list[str] = field(default_factory=list)
    # payload field -> [entity, natural key] of a record created earlier in the same plan
    deferred: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return self.action in WRITE_ACTIONS

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PlanItem:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def resolve_deferred(item: PlanItem, refs: RefIndex) -> PlanItem:
    """Fill the payload fields that waited for a record created earlier in the same plan (e.g. a
    department cluster whose region was created just before). Unresolvable ones stay deferred."""
    if not item.deferred or item.payload is None:
        return item
    payload = dict(item.payload)
    still: dict[str, list[str]] = {}
    for name, (entity, key) in item.deferred.items():
        ref_id = refs.id_of(entity, key)
        if ref_id is None:
            still[name] = [entity, key]
        else:
            payload[name] = ref_id
    return dataclasses.replace(item, payload=payload, deferred=still)


def mass_deactivation_reason(items: Iterable[PlanItem], active_count: int, settings: SyncSettings) -> str | None:
    """Why a plan must stop for review: at least `mass_deactivation_min` deactivations that are more
    than `mass_deactivation_share` of the currently active records. None when it may proceed."""
    count = sum(1 for item in items if item.action == "deactivate")
    if count < settings.mass_deactivation_min:
        return None
    if active_count > 0 and count <= settings.mass_deactivation_share * active_count:
        return None
    return (
        f"{count} deactivations out of {active_count} active records exceed the guard "
        f"(min {settings.mass_deactivation_min}, share {settings.mass_deactivation_share:.0%})"
    )


def active_drop_reason(previous_active: int, current_active: int, settings: SyncSettings) -> str | None:
    """Why a source read looks truncated: the active-employee count fell by more than
    `active_employee_drop_share` since the previous run. None when it looks plausible."""
    if previous_active <= 0 or current_active >= previous_active:
        return None
    drop = (previous_active - current_active) / previous_active
    if drop <= settings.active_employee_drop_share:
        return None
    return (
        f"active employees fell from {previous_active} to {current_active} ({drop:.0%}), more than "
        f"the allowed {settings.active_employee_drop_share:.0%}"
    )


# ----------------------------------------------------------------------------- helpers


def _code(value: object) -> str | None:
    text = clean_text(value, CODE_MAX)
    return text.casefold() if text else None


def _desc(value: object) -> str | None:
    return clean_text(value, DESCRIPTION_MAX)


Normalizer = Callable[[Any], Any]


def _diff(
    want: Mapping[str, Any], existing: Mapping[str, Any], normalizers: Mapping[str, Normalizer]
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    changed: list[str] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in want.items():
        have = existing.get(name)
        if value == have and value.__class__ is have.__class__:
            continue  # identical raw values normalize identically
        norm = normalizers[name]
        if norm(value) != norm(have):
            changed.append(name)
            before[name] = existing.get(name)
            after[name] = value
    return changed, before, after


def _rejected(record: DesiredRecord, reason: str, digest: str, target: Any = None) -> PlanItem:
    return PlanItem(record.entity, record.key, "rejected", target_id=target, reason=reason, desired_hash=digest)


def _unchanged(record: DesiredRecord, digest: str, target: Any, notes: list[str] | None = None, reason: str | None = None) -> PlanItem:
    return PlanItem(record.entity, record.key, "unchanged", target_id=target, reason=reason, desired_hash=digest, notes=notes or [])


def _current_by_key(entity: str, current: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in sorted(current, key=_id_order):
        key = index_key(entity, natural_key(entity, record))
        if key is not None:
            out.setdefault(key, record)
    return out


@without_gc
def plan_entity(
    entity: str,
    desired: DesiredSet | Iterable[DesiredRecord],
    current_records: Iterable[Any],
    refs: RefIndex | None,
    settings: SyncSettings | None = None,
) -> list[PlanItem]:
    """The plan for one entity. `refs` resolves references to other entities (and holds the
    uniqueness indexes for users); pass `RefIndex.from_state(full_state, settings)`."""
    settings = settings or SyncSettings()
    records = list(desired.records if isinstance(desired, DesiredSet) else desired or ())
    current = [dict(r) for r in current_records or () if _is_live(r)]
    if refs is None:
        refs = RefIndex.from_state({entity: current}, settings)
    by_key = _current_by_key(entity, current)
    planner = _PLANNERS.get(entity)
    if planner is None:
        raise ValueError(f"unknown entity {entity!r}")
    return planner(records, by_key, current, refs, settings)


# ----------------------------------------------------------------------------- clusters

_CLUSTER_NORM: dict[str, Normalizer] = {"name": clean_text, "external_code": _code, "parent_cluster_id": as_int}


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


def _plan_clusters(records, by_key, current, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    desired_keys = {index_key("site_clusters", r.key) for r in records if not r.rejected}
    adopted: set[Any] = set()
    items: list[PlanItem] = []
    for rec in _parents_first(records):
        digest = desired_hash(rec)
        if rec.rejected:
            items.append(_rejected(rec, rec.rejected, digest))
            continue
        name = clean_text(rec.fields.get("name"))
        if name is None:
            items.append(_rejected(rec, f"cluster {rec.key}: field name is empty", digest))
            continue
        existing = by_key.get(index_key("site_clusters", rec.key))
        parent_key = rec.refs.get("parent")
        if existing is None and parent_key is not None:
            candidate = refs.unkeyed_clusters_by_name.get(name.casefold())
            if candidate is not None and candidate.get("parent_cluster_id") is not None and candidate["id"] not in adopted:
                existing = candidate  # legacy cluster without external_code: adopt it instead of creating a twin
                adopted.add(candidate["id"])
        if parent_key is None:  # the root: matched by name, never rewritten
            if existing is not None:
                items.append(_unchanged(rec, digest, existing.get("id")))
            else:
                payload = {"name": name, "osha_establishment": rec.fields.get("osha_establishment", settings.osha_establishment)}
                items.append(PlanItem("site_clusters", rec.key, "create", payload=payload, method="POST",
                                      changed_fields=sorted(payload), after=dict(payload), desired_hash=digest))
            continue
        parent_id = as_int(refs.id_of("site_clusters", parent_key))
        deferred: dict[str, list[str]] = {}
        if parent_id is None:
            if index_key("site_clusters", parent_key) not in desired_keys:
                items.append(_rejected(rec, f"cluster {rec.key}: field parent_cluster_id: parent cluster {parent_key!r} is not in SafetyAmp", digest))
                continue
            deferred = {"parent_cluster_id": ["site_clusters", parent_key]}
        want = {"name": name, "external_code": rec.fields.get("external_code"), "parent_cluster_id": parent_id}
        if existing is None:
            payload = {**want, "osha_establishment": rec.fields.get("osha_establishment", settings.osha_establishment)}
            items.append(PlanItem("site_clusters", rec.key, "create", payload=payload, method="POST",
                                  changed_fields=sorted(payload), after=dict(payload), desired_hash=digest, deferred=deferred))
            continue
        changed, before, after = _diff(want, existing, _CLUSTER_NORM)
        if deferred and "parent_cluster_id" not in changed:
            changed.append("parent_cluster_id")
            before["parent_cluster_id"], after["parent_cluster_id"] = existing.get("parent_cluster_id"), None
        if not changed:
            items.append(_unchanged(rec, digest, existing.get("id")))
            continue
        osha = existing.get("osha_establishment")
        payload = {**want, "osha_establishment": settings.osha_establishment if osha is None else osha}
        items.append(PlanItem("site_clusters", rec.key, "update", target_id=existing.get("id"), payload=payload,
                              method="PUT", changed_fields=changed, before=before, after=after,
                              desired_hash=digest, deferred=deferred))
    return items


# ----------------------------------------------------------------------------- sites

_SITE_NORM: dict[str, Normalizer] = {
    "name": clean_text,
    "cluster_id": as_int,
    "street": clean_text,
    "city": clean_text,
    "state": clean_state,
    "zip_code": clean_zip,
    "ext_id": _code,
}


def _plan_sites(records, by_key, current, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    adopted: set[Any] = set()
    items: list[PlanItem] = []
    for rec in records:
        digest = desired_hash(rec)
        if rec.rejected:
            items.append(_rejected(rec, rec.rejected, digest))
            continue
        cluster_key = rec.refs.get("cluster")
        cluster_id = as_int(refs.id_of("site_clusters", cluster_key))
        existing = by_key.get(index_key("sites", rec.key))
        if cluster_id is None:
            items.append(_rejected(rec, f"site {rec.key}: field cluster_id: cluster {cluster_key!r} is not in SafetyAmp", digest,
                                   existing.get("id") if existing else None))
            continue
        f = rec.fields
        name = clean_text(f.get("name"))
        if existing is None and name:
            candidate = refs.unkeyed_sites_by_name.get(name.casefold())
            if candidate is not None and candidate["id"] not in adopted:
                existing = candidate  # legacy site created without ext_id: adopt it
                adopted.add(candidate["id"])
        want = {
            "name": name,
            "ext_id": f.get("ext_id"),
            "cluster_id": cluster_id,
            "street": f.get("street"),
            "city": f.get("city"),
            "state": f.get("state"),
            "zip_code": f.get("zip_code"),
        }
        if existing is None:
            payload = {**want, "country": f.get("country"), "timezone": f.get("timezone")}
            payload = {k: v for k, v in payload.items() if v is not None}
            items.append(PlanItem("sites", rec.key, "create", payload=payload, method="POST",
                                  changed_fields=sorted(payload), after=dict(payload), desired_hash=digest))
            continue
        changed, before, after = _diff(want, existing, _SITE_NORM)
        if not changed:
            items.append(_unchanged(rec, digest, existing.get("id")))
            continue
        # PUT replaces: fields we do not manage keep SafetyAmp's value.
        payload = {
            **want,
            "country": existing.get("country") or f.get("country"),
            "timezone": existing.get("timezone") or f.get("timezone"),
        }
        items.append(PlanItem("sites", rec.key, "update", target_id=existing.get("id"), payload=payload, method="PUT",
                              changed_fields=changed, before=before, after=after, desired_hash=digest))
    return items


# ----------------------------------------------------------------------------- titles


def _plan_titles(records, by_key, current, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    items: list[PlanItem] = []
    for rec in records:
        digest = desired_hash(rec)
        if rec.rejected:
            items.append(_rejected(rec, rec.rejected, digest))
            continue
        name = clean_text(rec.fields.get("name"))
        if name is None:
            items.append(_rejected(rec, f"title {rec.key}: field name is empty", digest))
            continue
        existing = by_key.get(title_key(name)) or by_key.get(index_key("user_titles", rec.key))
        if existing is not None:  # never duplicated, never renamed
            items.append(_unchanged(rec, digest, existing.get("id")))
            continue
        items.append(PlanItem("user_titles", rec.key, "create", payload={"name": name}, method="POST",
                              changed_fields=["name"], after={"name": name}, desired_hash=digest))
    return items


# ----------------------------------------------------------------------------- users

USER_COMPARED: dict[str, Normalizer] = {
    "first_name": clean_text,
    "middle_name": clean_text,
    "last_name": clean_text,
    "email": email_key,
    "gender": normalize_gender,
    "date_of_birth": format_date,
    "current_hire_date": format_date,
    "street": clean_text,
    "city": clean_text,
    "state": clean_state,
    "zip_code": clean_zip,
    "country": clean_country,
    "mobile_phone": normalize_phone,
    "work_phone": normalize_phone,
    "home_site_id": as_int,
    "system_access": as_bool,
}
_CORE_USER_FIELDS = ("first_name", "last_name", "email")


def _wire(name: str, value: Any) -> Any:
    """Value as sent (SafetyAmp takes system_access as 1/0)."""
    if name == "system_access" and value is not None:
        return 1 if value else 0
    return value


def _core_fields(existing: Mapping[str, Any], desired: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    core: dict[str, Any] = {}
    for name in _CORE_USER_FIELDS:
        if name in after:
            core[name] = after[name]
        elif clean_text(existing.get(name)):
            core[name] = existing.get(name)
        elif desired.get(name) is not None:
            core[name] = desired[name]
    return core


def _home_site(rec: DesiredRecord, refs: RefIndex) -> tuple[int | None, str]:
    job = rec.refs.get("home_site")
    region = rec.refs.get("home_site_region_office")
    if job:
        site_id = as_int(refs.id_of("sites", job))
        if site_id is not None:
            return site_id, f"site of job {job}"
    if region:
        site_id = refs.region_office_site_id(region)
        if site_id is not None:
            return site_id, f"office site of region {region}"
    parts = []
    if job:
        parts.append(f"no SafetyAmp site for job {job}")
    if region:
        parts.append(f"no SafetyAmp site attached to region cluster {region!r}")
    return None, "; ".join(parts) or "no job and no region"


def _unique_claim(rec: DesiredRecord, existing: Mapping[str, Any] | None) -> Claim:
    """What a desired user would send of the unique values, and what it would give up."""
    claim = Claim(rec.key, existing.get("id") if existing else None)
    fields = rec.fields
    wanted = {"email": fields.get("email")}
    if "mobile_phone" in fields:
        wanted["mobile_phone"] = fields.get("mobile_phone")
    for kind, value in wanted.items():
        if existing is not None and value == existing.get(kind):
            continue  # identical raw values: nothing sent, nothing released
        value = email_key(value) if kind == "email" else normalize_phone(value)
        current = None
        if existing is not None:
            current = email_key(existing.get(kind)) if kind == "email" else normalize_phone(existing.get(kind))
        if value == current:
            continue
        if value:
            claim.sends[kind] = value
        if current:
            claim.releases[kind] = current
    return claim


def _plan_users(records, by_key, current, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    active = [(rec, by_key.get(index_key("users", rec.key))) for rec in records if not rec.rejected and not rec.deactivate]
    holders = {"email": refs.users_by_email, "mobile_phone": refs.users_by_mobile}

    def holders_of(kind: str, value: str) -> list[Any]:
        norm = email_key if kind == "email" else normalize_phone
        ids = holders[kind].get(value, ())
        return [i for i in dict.fromkeys(ids) if norm(refs.users_by_id.get(i, {}).get(kind)) == value]

    verdict = arbitrate((_unique_claim(rec, existing) for rec, existing in active), holders_of)
    items: list[PlanItem] = []
    for rec in records:
        digest = desired_hash(rec)
        if rec.rejected:
            items.append(_rejected(rec, rec.rejected, digest))
            continue
        existing = by_key.get(index_key("users", rec.key))
        if rec.deactivate:
            items.append(_plan_user_deactivation(rec, existing, digest))
            continue
        notes: list[str] = []
        home_site_id, home_why = _home_site(rec, refs)
        title_ref = rec.refs.get("current_title")
        title = refs.record("user_titles", title_ref) if title_ref else None
        if title_ref and title is None:
            notes.append(f"title {title_ref!r} is not in SafetyAmp: not sent")
        blocked = verdict.blocked.get(rec.key, set())
        if existing is None:
            items.append(_plan_user_create(rec, digest, home_site_id, home_why, title, refs, notes, blocked))
        else:
            items.append(_plan_user_update(rec, digest, existing, home_site_id, home_why, title, refs, notes, blocked))
    # a user taking over a value another user gives up is written after that user
    return sorted(items, key=lambda item: verdict.phase.get(item.key, 0))


def _held_by(refs: RefIndex, kind: str, value: Any, user_id: Any) -> str:
    holder = refs.other_email_holder(value, user_id) if kind == "email" else refs.other_mobile_holder(value, user_id)
    if holder is None:
        return "another SafetyAmp user that keeps it in this plan"
    return f"SafetyAmp user {holder.get('id')} (emp_id {holder.get('emp_id')})"


def _plan_user_deactivation(rec: DesiredRecord, existing: Mapping[str, Any] | None, digest: str) -> PlanItem:
    if existing is None:
        return _unchanged(rec, digest, None, reason=f"employee {rec.key} is terminated and has no SafetyAmp user: not created")
    if as_bool(existing.get("system_access")) is False:
        return _unchanged(rec, digest, existing.get("id"))
    payload = {**_core_fields(existing, {}, {}), "system_access": 0}
    return PlanItem("users", rec.key, "deactivate", target_id=existing.get("id"), payload=payload, method="PATCH",
                    changed_fields=["system_access"], before={"system_access": existing.get("system_access")},
                    after={"system_access": False}, desired_hash=digest, reason=f"employee {rec.key} is terminated")


def _plan_user_create(rec, digest, home_site_id, home_why, title, refs: RefIndex, notes, blocked: set[str]) -> PlanItem:
    if home_site_id is None:
        return _rejected(rec, f"employee {rec.key}: field home_site_id unresolved ({home_why}): not created", digest)
    payload = {k: _wire(k, v) for k, v in rec.fields.items() if v is not None}
    if "email" in blocked:
        return _rejected(rec, f"employee {rec.key}: field email is already used by "
                              f"{_held_by(refs, 'email', payload.get('email'), None)}", digest)
    if "mobile_phone" in blocked and payload.get("mobile_phone"):
        notes.append(f"mobile_phone not sent: already used by {_held_by(refs, 'mobile_phone', payload['mobile_phone'], None)}")
        del payload["mobile_phone"]
    payload["system_access"] = 1
    payload["home_site_id"] = home_site_id
    if title is not None:
        payload["current_title_id"] = title.get("id")
    role_name = rec.refs.get("role")
    role_id = refs.role_id(role_name) if role_name else None
    if role_name and role_id is None:
        notes.append(f"role {role_name!r} is not in SafetyAmp: created without a role")
    payload["roles"] = [{"id": role_id}] if role_id is not None else []
    payload["sites"] = []
    notes.append(f"home site: {home_why}")
    return PlanItem("users", rec.key, "create", payload=payload, method="POST", changed_fields=sorted(payload),
                    after=dict(payload), desired_hash=digest, notes=notes)


def _plan_user_update(rec, digest, existing, home_site_id, home_why, title, refs: RefIndex, notes, blocked: set[str]) -> PlanItem:
    target = existing.get("id")
    want = {name: rec.fields[name] for name in USER_COMPARED if name in rec.fields}
    if home_site_id is not None:
        want["home_site_id"] = home_site_id
    else:
        notes.append(f"home site unresolved ({home_why}): left as is")
    changed, before, after = _diff(want, existing, USER_COMPARED)
    existing_title = existing.get("current_title") if isinstance(existing.get("current_title"), Mapping) else None
    if title is not None and title_key(title.get("name")) != title_key((existing_title or {}).get("name")):
        changed.append("current_title")
        before["current_title"] = (existing_title or {}).get("name")
        after["current_title"] = title.get("name")
    if "email" in after and "email" in blocked:
        return _rejected(rec, f"employee {rec.key}: field email is already used by "
                              f"{_held_by(refs, 'email', after['email'], target)}", digest, target)
    if after.get("mobile_phone") and "mobile_phone" in blocked:
        notes.append(f"mobile_phone not sent: already used by {_held_by(refs, 'mobile_phone', after['mobile_phone'], target)}")
        changed.remove("mobile_phone")
        before.pop("mobile_phone")
        after.pop("mobile_phone")
    if not changed:
        return _unchanged(rec, digest, target, notes)
    payload = _core_fields(existing, rec.fields, after)
    for name in changed:
        if name == "current_title":
            payload["current_title_id"] = title.get("id")
        else:
            payload[name] = _wire(name, after[name])
    return PlanItem("users", rec.key, "update", target_id=target, payload=payload, method="PATCH",
                    changed_fields=changed, before=before, after=after, desired_hash=digest, notes=notes)


# ----------------------------------------------------------------------------- assets

_ASSET_NORM: dict[str, Normalizer] = {
    "name": clean_text,
    "code": lambda v: clean_text(v, CODE_MAX),
    "model": clean_text,
    "description": _desc,
    "status": as_int,
    "site_id": as_int,
    "asset_type_id": as_int,
    "current_user_id": lambda v: clean_text(v, CODE_MAX),
}
_ASSET_BODY = ("name", "code", "serial", "model", "description", "status", "site_id", "asset_type_id", "current_user_id")


def _plan_assets(records, by_key, current, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
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
            items.append(_rejected(rec, rec.rejected, digest))
            if key and not key.startswith(("SAMSARA:", "ROW#")):
                desired_keys.add(key)
            continue
        desired_keys.add(key or "")
        existing = by_key.get(key or "")
        if setup_problem:
            items.append(_rejected(rec, f"vehicle {rec.key}: {setup_problem}", digest, existing.get("id") if existing else None))
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
        changed, before, after = _diff(want, existing, _ASSET_NORM)
        if not changed:
            items.append(_unchanged(rec, digest, existing.get("id"), notes))
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


_PLANNERS: dict[str, Callable[..., list[PlanItem]]] = {
    "site_clusters": _plan_clusters,
    "sites": _plan_sites,
    "user_titles": _plan_titles,
    "users": _plan_users,
    "assets": _plan_assets,
}


# ----------------------------------------------------------------------------- simulated server

_HASHID_ALPHABET = string.ascii_letters + string.digits


def _next_user_id(taken: Any, counter: list[int]) -> str:
    while True:
        counter[0] += 1
        n, chars = counter[0] * 7919 + 104729, []
        for _ in range(5):
            n, r = divmod(n, len(_HASHID_ALPHABET))
            chars.append(_HASHID_ALPHABET[r])
        candidate = "".join(chars)
        if candidate not in taken:
            return candidate


@without_gc
def apply_plan(state: Mapping[str, Iterable[Any]], items: Iterable[PlanItem]) -> dict[str, list[dict[str, Any]]]:
    """A new state as the SafetyAmp server would hold it after the plan's writes (GET shape: users'
    ids are 5-char strings, other ids ints; a user's title as `current_title {id, name}`)."""
    new: dict[str, list[dict[str, Any]]] = {k: [dict(r) for r in v or ()] for k, v in (state or {}).items()}
    by_id: dict[str, dict[Any, dict[str, Any]]] = {}
    next_int: dict[str, int] = {}
    counter = [0]

    def index(entity: str) -> dict[Any, dict[str, Any]]:
        if entity not in by_id:
            records = new.setdefault(entity, [])
            by_id[entity] = {r.get("id"): r for r in records}
            next_int[entity] = max((as_int(r.get("id")) or 0 for r in records), default=0) + 1
        return by_id[entity]

    for item in items:
        if not item.is_write or item.payload is None:
            continue
        records = index(item.entity)
        payload = dict(item.payload)
        for name, (entity, key) in item.deferred.items():
            wanted = index_key(entity, key)
            payload[name] = next((r.get("id") for r in sorted(new.get(entity, []), key=_id_order)
                                  if index_key(entity, natural_key(entity, r)) == wanted), None)
        if item.action == "create":
            if item.entity == "users":
                new_id: Any = _next_user_id(records.keys(), counter)
            else:
                new_id = next_int[item.entity]
                next_int[item.entity] += 1
            record = {"id": new_id}
            records[new_id] = record
            new[item.entity].append(record)
        else:
            record = records.get(item.target_id)
            if record is None:
                continue
        _store(item.entity, record, payload, new, by_id)
    return new


def _store(
    entity: str,
    record: dict[str, Any],
    payload: dict[str, Any],
    state: dict[str, list[dict[str, Any]]],
    by_id: dict[str, dict[Any, dict[str, Any]]],
) -> None:
    def lookup(other: str, wanted: Any) -> dict[str, Any] | None:
        if other not in by_id:
            by_id[other] = {r.get("id"): r for r in state.get(other, [])}
        return by_id[other].get(wanted)

    for name, value in payload.items():
        if entity == "users" and name == "current_title_id":
            title = lookup("user_titles", value)
            record["current_title"] = {"id": value, "name": title.get("name") if title else None}
        elif entity == "users" and name == "roles":
            roles = [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []
            record["roles"] = [dict(lookup("roles", r.get("id")) or r) for r in roles]
        elif entity == "users" and name == "system_access":
            record["system_access"] = bool(value)
        elif entity == "assets" and name in ("vin", "year"):
            continue  # accepted but not part of the asset resource
        else:
            record[name] = value
    if entity == "site_clusters":
        parent = lookup("site_clusters", record.get("parent_cluster_id"))
        record.setdefault("external_code", None)
        record.setdefault("parent_cluster_id", None)
        record["depth"] = (parent.get("depth", 0) + 1) if parent else 0
        record["path"] = f"{parent.get('path', '/')}{parent.get('id')}/" if parent else "/"
