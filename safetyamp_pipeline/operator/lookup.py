"""Finding one record everywhere it lives: the key forms an operator types, the stored source rows,
the desired record and the SafetyAmp mirror record.

Kinds are the words an operator uses (employee, site, cluster, title, vehicle); each maps to a
SafetyAmp entity, its desired asset and the source assets its rows come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from safetyamp_pipeline.core.models import DesiredRecord, record_from_row
from safetyamp_pipeline.core.normalize import (
    asset_key,
    canonical_emp_id,
    clean_text,
    title_key,
    vista_employee_number,
)
from safetyamp_pipeline.core.refs import index_key, natural_key
from safetyamp_pipeline.store import MissingAssetValue


@dataclass(frozen=True)
class Kind:
    name: str
    entity: str
    desired_asset: str
    label: str


KINDS: dict[str, Kind] = {
    "employee": Kind("employee", "users", "desired/users", "employee"),
    "site": Kind("site", "sites", "desired/sites", "job/site"),
    "cluster": Kind("cluster", "site_clusters", "desired/site_clusters", "cluster"),
    "title": Kind("title", "user_titles", "desired/titles", "title"),
    "vehicle": Kind("vehicle", "assets", "desired/assets", "vehicle"),
}

# --entity accepts the SafetyAmp entity names and the operator's words for them.
ENTITY_ALIASES: dict[str, str] = {
    **{k.entity: k.entity for k in KINDS.values()},
    **{k.name: k.entity for k in KINDS.values()},
    "employees": "users", "user": "users", "job": "sites", "jobs": "sites", "clusters": "site_clusters",
    "titles": "user_titles", "vehicles": "assets", "asset": "assets",
}


def entity_name(text: str) -> str | None:
    return ENTITY_ALIASES.get(text.strip().casefold())


def load_rows(store: Any, asset_key_: str) -> tuple[list[dict], str | None]:
    """The stored value of an asset, or an empty list and a note saying it was never materialized."""
    try:
        return list(store.load_asset_value(asset_key_)), None
    except MissingAssetValue:
        return [], f"{asset_key_} has no stored value in this store (materialize it first)"


def desired_records(store: Any, kind: Kind) -> tuple[list[DesiredRecord], str | None]:
    rows, note = load_rows(store, kind.desired_asset)
    return [record_from_row(row) for row in rows if isinstance(row, Mapping)], note


def _text(value: Any) -> str:
    return (clean_text(value) or "").casefold()


def job_form(value: Any) -> str:
    """A job number as an operator may type it: no padding, no trailing dot, any case."""
    return _text(value).rstrip(".").strip()


def base_key(key: str) -> str:
    """A desired key without its ``#dup<row>`` suffix (rejected duplicate source rows)."""
    return key.split("#dup", 1)[0]


# ----------------------------------------------------------------------------- key matching


@dataclass
class Match:
    """Everything that answers to the operator's key."""

    key: str | None
    desired: DesiredRecord | None
    duplicates: list[DesiredRecord]
    mirror_key: str | None
    mirror: dict | None


def _samsara_ids(row: Mapping[str, Any]) -> tuple[str, str, str | None]:
    serial = clean_text(row.get("serial")) or clean_text((row.get("gateway") or {}).get("serial")
                                                         if isinstance(row.get("gateway"), Mapping) else None)
    return _text(row.get("id")), _text(row.get("licensePlate")), asset_key(serial)


def matcher(kind: Kind, wanted: str, sources: Mapping[str, list[dict]]) -> Callable[[str | None, Mapping[str, Any]], bool]:
    """A predicate on (natural key, record fields) telling whether a desired or mirror record is
    the one the operator named."""
    folded = _text(wanted)
    if kind.name == "employee":
        emp = canonical_emp_id(wanted)
        return lambda key, rec: key is not None and canonical_emp_id(base_key(key)) == emp
    if kind.name == "site":
        form = job_form(wanted)
        return lambda key, rec: key is not None and job_form(base_key(key)) == form
    if kind.name == "cluster":
        return lambda key, rec: folded != "" and (_text(key) == folded or _text(rec.get("name")) == folded)
    if kind.name == "title":
        wanted_title = title_key(wanted)
        return lambda key, rec: key is not None and title_key(base_key(key)) == wanted_title
    # vehicle: serial, Samsara id or plate; Samsara rows translate id and plate to the serial
    serials = {asset_key(wanted)}
    for row in sources.get("samsara/vehicles", []):
        sid, plate, serial = _samsara_ids(row)
        if serial and folded in (sid, plate):
            serials.add(serial)
    serials.discard(None)
    unserialized = f"samsara:{folded}"  # desired key of a vehicle without a serial

    def is_vehicle(key: str | None, rec: Mapping[str, Any]) -> bool:
        if asset_key(base_key(key or "")) in serials or _text(key) == unserialized:
            return True
        return folded != "" and _text(rec.get("code")) == folded

    return is_vehicle


def find(kind: Kind, wanted: str, desired: Iterable[DesiredRecord], mirror: Mapping[str, dict],
         sources: Mapping[str, list[dict]]) -> Match:
    is_it = matcher(kind, wanted, sources)
    exact: DesiredRecord | None = None
    duplicates: list[DesiredRecord] = []
    for record in desired:
        if not is_it(record.key, record.fields):
            continue
        if "#dup" in record.key:
            duplicates.append(record)
        elif exact is None:
            exact = record
    mirror_key, mirror_record = None, None
    wanted_index = index_key(kind.entity, exact.key) if exact else None
    for key, record in mirror.items():
        if wanted_index is not None and index_key(kind.entity, key) == wanted_index:
            mirror_key, mirror_record = key, record
            break
        if mirror_record is None and is_it(key, record):
            mirror_key, mirror_record = key, record
    key = exact.key if exact else (natural_key(kind.entity, mirror_record) if mirror_record else None)
    return Match(key, exact, duplicates, mirror_key, mirror_record)


# ----------------------------------------------------------------------------- source rows


def employee_rows(employees: list[dict], emp: str) -> list[dict]:
    return [row for row in employees if isinstance(row, Mapping) and vista_employee_number(row.get("Employee")) == emp]


def payroll_rows(rows: list[dict], emp: str) -> list[dict]:
    found = [row for row in rows if isinstance(row, Mapping) and vista_employee_number(row.get("Employee")) == emp]
    return sorted(found, key=lambda r: (str(r.get("PREndDate") or ""), float(r.get("Hrs") or 0)), reverse=True)


def entra_rows(users: list[dict], emp: str) -> list[dict]:
    return [u for u in users if isinstance(u, Mapping) and canonical_emp_id(u.get("employeeId")) == emp]


def job_rows(jobs: list[dict], wanted: str) -> list[dict]:
    form = job_form(wanted)
    return [row for row in jobs if isinstance(row, Mapping) and job_form(row.get("Job")) == form]


def department_rows(departments: list[dict], code: Any) -> list[dict]:
    folded = _text(code)
    return [row for row in departments if isinstance(row, Mapping) and folded and _text(row.get("PRDept")) == folded]


def region_rows(departments: list[dict], region: Any) -> list[dict]:
    folded = _text(region)
    return [row for row in departments if isinstance(row, Mapping) and folded and _text(row.get("udRegion")) == folded]


def title_holders(employees: list[dict], title: str) -> list[dict]:
    wanted = title_key(title)
    return [row for row in employees if isinstance(row, Mapping) and wanted and title_key(row.get("udEmpTitle")) == wanted]


def vehicle_rows(vehicles: list[dict], wanted: str, serial: str | None) -> list[dict]:
    folded = _text(wanted)
    out = []
    for row in vehicles:
        if not isinstance(row, Mapping):
            continue
        sid, plate, row_serial = _samsara_ids(row)
        if folded in (sid, plate) or (row_serial is not None and row_serial in (serial, asset_key(wanted))):
            out.append(row)
    return out
