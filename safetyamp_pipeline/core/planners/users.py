"""User planner: create / update (compared fields only) / deactivate, with the unique-value arbitration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from operator import itemgetter
from typing import Any

from ..models import DesiredRecord, Record, RecordId
from ..normalize import (
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
from ..refs import RefIndex, index_key
from ..settings import SyncSettings
from ..uniqueness import Claim, arbitrate
from .common import Digest, Normalizer, PlanItem, RecordsByKey, diff_present, rejected, unchanged

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
# The compared fields a desired user carries, in USER_COMPARED order (home_site_id is resolved by
# the plan and compared after them).
_COMPARED_FROM_FIELDS = {name: norm for name, norm in USER_COMPARED.items() if name != "home_site_id"}
_CORE_USER_FIELDS = ("first_name", "last_name", "email")
# fields shape (its keys in order) -> the compared names it holds and a getter of their values
_SHAPES: dict[tuple[str, ...], tuple[tuple[str, ...], Callable[[Mapping[str, Any]], Any]]] = {}


def _same_compared_values(fields: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    """True when every compared field of `fields` holds exactly SafetyAmp's value, of the same type:
    what `diff_present` would find field by field, decided with C-level tuple comparisons (the
    common case of an unchanged user: ~17k per plan at 20k employees)."""
    shape = tuple(fields)
    found = _SHAPES.get(shape)
    if found is None:
        names = tuple(name for name in _COMPARED_FROM_FIELDS if name in fields)
        if len(names) < 2:  # itemgetter of one name returns the value, not a tuple
            return False
        found = _SHAPES[shape] = (names, itemgetter(*names))
    names, values_of = found
    wanted = values_of(fields)
    held = tuple(map(existing.get, names))
    return wanted == held and tuple(map(type, wanted)) == tuple(map(type, held))
_NOTHING_BLOCKED: frozenset[str] = frozenset()


def _wire(name: str, value: object) -> object:
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


def _unique_claim(rec: DesiredRecord, existing: Record | None) -> Claim | None:
    """What a desired user would send of the unique values, and what it would give up; None when
    it sends none (the common case: both values exactly as SafetyAmp holds them)."""
    fields = rec.fields
    if (
        existing is not None
        and fields.get("email") == existing.get("email")
        and ("mobile_phone" not in fields or fields["mobile_phone"] == existing.get("mobile_phone"))
    ):
        return None  # identical raw values: nothing sent, nothing released
    claim = Claim(rec.key, existing.get("id") if existing else None)
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


def plan_users(records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    existing_of = {rec.key: by_key.get(index_key("users", rec.key) or "") for rec in records if not rec.rejected}
    active = [(rec, existing_of[rec.key]) for rec in records if not rec.rejected and not rec.deactivate]

    def holders_of(kind: str, value: str) -> list[RecordId]:
        # the contact indexes are built on first use: a plan that sends no unique value needs none
        norm = email_key if kind == "email" else normalize_phone
        ids = (refs.users_by_email if kind == "email" else refs.users_by_mobile).get(value, ())
        return [i for i in dict.fromkeys(ids) if norm(refs.users_by_id.get(i, {}).get(kind)) == value]

    claims = (_unique_claim(rec, existing) for rec, existing in active)
    verdict = arbitrate((claim for claim in claims if claim is not None), holders_of)
    home_sites: dict[tuple[str | None, str | None], tuple[int | None, str]] = {}  # (job, region) -> site
    items: list[PlanItem] = []
    for rec in records:
        digest: Digest = rec  # hashed when item.desired_hash is first read
        if rec.rejected:
            items.append(rejected(rec, rec.rejected, digest))
            continue
        existing = existing_of[rec.key]
        if rec.deactivate:
            items.append(_plan_user_deactivation(rec, existing, digest))
            continue
        notes: list[str] = []
        home = (rec.refs.get("home_site"), rec.refs.get("home_site_region_office"))
        found = home_sites.get(home)
        if found is None:
            found = home_sites[home] = _home_site(rec, refs)
        home_site_id, home_why = found
        title_ref = rec.refs.get("current_title")
        title = refs.record("user_titles", title_ref) if title_ref else None
        if title_ref and title is None:
            notes.append(f"title {title_ref!r} is not in SafetyAmp: not sent")
        blocked = verdict.blocked.get(rec.key, _NOTHING_BLOCKED)
        if existing is None:
            items.append(_plan_user_create(rec, digest, home_site_id, home_why, title, refs, notes, blocked))
        else:
            items.append(_plan_user_update(rec, digest, existing, home_site_id, home_why, title, refs, notes, blocked))
    # a user taking over a value another user gives up is written after that user
    if not any(verdict.phase.values()):
        return items  # every phase 0: the stable sort would keep this order
    return sorted(items, key=lambda item: verdict.phase.get(item.key, 0))


def _held_by(refs: RefIndex, kind: str, value: object, user_id: RecordId | None) -> str:
    holder = refs.other_email_holder(value, user_id) if kind == "email" else refs.other_mobile_holder(value, user_id)
    if holder is None:
        return "another SafetyAmp user that keeps it in this plan"
    return f"SafetyAmp user {holder.get('id')} (emp_id {holder.get('emp_id')})"


def _plan_user_deactivation(rec: DesiredRecord, existing: Record | None, digest: Digest) -> PlanItem:
    if existing is None:
        return unchanged(rec, digest, None, reason=f"employee {rec.key} is terminated and has no SafetyAmp user: not created")
    if as_bool(existing.get("system_access")) is False:
        return unchanged(rec, digest, existing.get("id"))
    payload = {**_core_fields(existing, {}, {}), "system_access": 0}
    return PlanItem("users", rec.key, "deactivate", target_id=existing.get("id"), payload=payload, method="PATCH",
                    changed_fields=["system_access"], before={"system_access": existing.get("system_access")},
                    after={"system_access": False}, desired_hash=digest, reason=f"employee {rec.key} is terminated")


def _plan_user_create(
    rec: DesiredRecord, digest: Digest, home_site_id: int | None, home_why: str, title: Record | None,
    refs: RefIndex, notes: list[str], blocked: AbstractSet[str],
) -> PlanItem:
    if home_site_id is None:
        return rejected(rec, f"employee {rec.key}: field home_site_id unresolved ({home_why}): not created", digest)
    payload = {k: _wire(k, v) for k, v in rec.fields.items() if v is not None}
    if "email" in blocked:
        return rejected(rec, f"employee {rec.key}: field email is already used by "
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


def _plan_user_update(
    rec: DesiredRecord, digest: Digest, existing: Record, home_site_id: int | None, home_why: str, title: Record | None,
    refs: RefIndex, notes: list[str], blocked: AbstractSet[str],
) -> PlanItem:
    target = existing.get("id")
    fields = rec.fields
    if _same_compared_values(fields, existing):
        changed, before, after = [], {}, {}
    else:
        changed, before, after = diff_present(fields, existing, _COMPARED_FROM_FIELDS)
    if home_site_id is not None:
        have = existing.get("home_site_id")
        if not (home_site_id == have and have.__class__ is int) and as_int(home_site_id) != as_int(have):
            changed.append("home_site_id")
            before["home_site_id"] = have
            after["home_site_id"] = home_site_id
    else:
        notes.append(f"home site unresolved ({home_why}): left as is")
    if title is not None:
        held = existing.get("current_title")
        held_name = held.get("name") if isinstance(held, Mapping) else None
        name = title.get("name")
        if name != held_name and title_key(name) != title_key(held_name):
            changed.append("current_title")
            before["current_title"] = held_name
            after["current_title"] = name
    if "email" in after and "email" in blocked:
        return rejected(rec, f"employee {rec.key}: field email is already used by "
                              f"{_held_by(refs, 'email', after['email'], target)}", digest, target)
    if after.get("mobile_phone") and "mobile_phone" in blocked:
        notes.append(f"mobile_phone not sent: already used by {_held_by(refs, 'mobile_phone', after['mobile_phone'], target)}")
        changed.remove("mobile_phone")
        before.pop("mobile_phone")
        after.pop("mobile_phone")
    if not changed:
        return unchanged(rec, digest, target, notes)
    payload = _core_fields(existing, rec.fields, after)
    for name in changed:
        if name == "current_title":
            payload["current_title_id"] = title.get("id") if title is not None else None
        else:
            payload[name] = _wire(name, after[name])
    return PlanItem("users", rec.key, "update", target_id=target, payload=payload, method="PATCH",
                    changed_fields=changed, before=before, after=after, desired_hash=digest, notes=notes)

