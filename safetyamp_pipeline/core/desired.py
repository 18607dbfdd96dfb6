"""Desired state: pure functions from source rows to DesiredRecords keyed by natural keys.

Clusters, sites, titles and assets live here; users (the largest rule set) in `desired_users`.
Every builder tolerates any row shape: a bad row becomes a rejected record or an Issue, never an
exception.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .desired_users import desired_users
from .models import DesiredRecord, DesiredSet, Issue, desired_hash, record_from_row, record_to_row
from .normalize import (
    CODE_MAX,
    DESCRIPTION_MAX,
    TEXT_MAX,
    as_int,
    asset_key,
    canonical_emp_id,
    clean_state,
    clean_text,
    clean_zip,
    normalize_job,
    normalize_title,
    normalize_vin,
)
from .perf import without_gc
from .rows import company_mismatch, department_regions, is_active_employee, row_get
from .settings import SyncSettings

_UNSEEN: Any = object()

__all__ = [
    "DesiredRecord",
    "DesiredSet",
    "Issue",
    "asset_key",
    "company_mismatch",
    "row_get",
    "department_regions",
    "desired_assets",
    "desired_hash",
    "desired_site_clusters",
    "desired_sites",
    "desired_titles",
    "desired_users",
    "is_active_employee",
    "record_from_row",
    "record_to_row",
]


# --------------------------------------------------------------------------- clusters


def desired_site_clusters(departments: Iterable[Any], settings: SyncSettings) -> DesiredSet:
    """Root -> one cluster per region (external_code = region) -> one per department
    ("<PRDept> - <Description>", external_code = PRDept)."""
    out = DesiredSet()
    root = clean_text(settings.root_cluster_name) or "Root"
    regions, depts = department_regions(departments, settings, out.issues)
    osha = settings.osha_establishment
    out.records.append(
        DesiredRecord("site_clusters", root, {"name": root, "osha_establishment": osha}, {}, {"name": "root cluster from settings"})
    )
    for region in regions:
        out.records.append(
            DesiredRecord(
                "site_clusters",
                region,
                {"name": region, "external_code": region, "osha_establishment": osha},
                {"parent": root},
                {"name": "bPRDP.udRegion"},
            )
        )
    for code, desc, region in depts.values():
        out.records.append(
            DesiredRecord(
                "site_clusters",
                code,
                {"name": clean_text(f"{code} - {desc}"), "external_code": code, "osha_establishment": osha},
                {"parent": region},
                {"name": "bPRDP.PRDept - bPRDP.Description", "parent": "bPRDP.udRegion"},
            )
        )
    return out


# --------------------------------------------------------------------------- sites


@without_gc
def desired_sites(jobs: Iterable[Any], departments: Iterable[Any], settings: SyncSettings) -> DesiredSet:
    """One site per open job, keyed by the trimmed job number (`ext_id`), under its contract
    department's cluster."""
    out = DesiredSet()
    _, depts = department_regions(departments, settings)
    seen: set[str] = set()
    for index, row in enumerate(jobs or ()):
        if not isinstance(row, Mapping):
            out.records.append(DesiredRecord("sites", f"row#{index}", rejected=f"job row {index}: not a record"))
            continue
        if company_mismatch(row, "JCCo", settings.jc_company):
            continue
        status = row_get(row, "JobStatus")
        if status is not None and as_int(status) != settings.open_job_status:
            continue
        job = normalize_job(row_get(row, "Job"))
        if job is None:
            out.records.append(DesiredRecord("sites", f"row#{index}", rejected=f"job row {index}: field Job is empty or not text"))
            continue
        if job.casefold() in seen:
            out.records.append(DesiredRecord("sites", f"{job}#dup{index}", rejected=f"job {job}: field Job duplicates an earlier row"))
            continue
        seen.add(job.casefold())
        desc = clean_text(row_get(row, "Description"))
        dept = clean_text(row_get(row, "Department"), CODE_MAX)
        if dept is None or dept.casefold() not in depts:
            shown = "empty" if dept is None else repr(dept)
            out.records.append(
                DesiredRecord("sites", job, rejected=f"job {job}: field Department ({shown}) has no site cluster")
            )
            continue
        provenance = {"name": "bJCJM.Job - bJCJM.Description", "ext_id": "bJCJM.Job (trimmed)", "cluster": "bJCCM.Department"}
        street = clean_text(row_get(row, "ShipAddress"))
        city = clean_text(row_get(row, "ShipCity"))
        state = clean_state(row_get(row, "ShipState"))
        zip_code = clean_zip(row_get(row, "ShipZip"))
        # An empty ship address part stays None: the site planner puts the placeholder in a create
        # only and never lets it replace a real address SafetyAmp holds.
        for name, value, default in (
            ("street", street, settings.placeholder_street),
            ("city", city, settings.placeholder_city),
            ("state", state, settings.default_state),
            ("zip_code", zip_code, settings.placeholder_zip),
        ):
            if value is None:
                provenance[name] = f"Vista value empty: placeholder {default!r} on create only, else SafetyAmp's value kept"
        fields = {
            "name": clean_text(f"{job} - {desc}", TEXT_MAX) if desc else job,
            "ext_id": job,
            "street": street,
            "city": city,
            "state": state,
            "zip_code": zip_code,
            "country": settings.country,
            "timezone": settings.timezone,
        }
        out.records.append(DesiredRecord("sites", job, fields, {"cluster": depts[dept.casefold()][0]}, provenance))
    return out


# --------------------------------------------------------------------------- titles


@without_gc
def desired_titles(employees: Iterable[Any], settings: SyncSettings) -> DesiredSet:
    """Distinct titles of active employees, matched case/space-insensitively; the spelling most
    employees use wins (ties: alphabetical first)."""
    out = DesiredSet()
    spellings: dict[str, Counter[str]] = {}
    seen: dict[str, str | None] = {}
    for row in employees or ():
        if not isinstance(row, Mapping) or company_mismatch(row, "PRCo", settings.pr_company):
            continue
        if not is_active_employee(row):
            continue
        raw = row_get(row, "udEmpTitle")
        if raw.__class__ is str:  # ~100 distinct titles among 20k employees: normalize each once
            title = seen.get(raw, _UNSEEN)
            if title is _UNSEEN:
                title = seen[raw] = normalize_title(raw)
        else:
            title = normalize_title(raw)
        if title is None:
            continue
        spellings.setdefault(title.casefold(), Counter())[title] += 1
    for key in sorted(spellings):
        counts = spellings[key]
        name = min(counts, key=lambda s: (-counts[s], s))
        out.records.append(
            DesiredRecord("user_titles", key, {"name": name}, {}, {"name": f"bPREH.udEmpTitle ({counts[name]} of {sum(counts.values())} use this spelling)"})
        )
    return out


# --------------------------------------------------------------------------- assets


def desired_assets(vehicles: Iterable[Any], settings: SyncSettings) -> DesiredSet:
    """One asset per Samsara vehicle, keyed by its gateway serial; status active for every vehicle
    present in Samsara. Asset type and site are resolved by name at plan time."""
    out = DesiredSet()
    seen: set[str] = set()
    for index, row in enumerate(vehicles or ()):
        if not isinstance(row, Mapping):
            out.records.append(DesiredRecord("assets", f"row#{index}", rejected=f"vehicle row {index}: not a record"))
            continue
        samsara_id = clean_text(row_get(row, "id"), CODE_MAX)
        label = f"samsara:{samsara_id}" if samsara_id else f"row#{index}"
        raw_serial = row_get(row, "serial")
        provenance = {"serial": "Samsara serial"}
        if clean_text(raw_serial, CODE_MAX) is None:
            raw_serial = row_get(row_get(row, "gateway"), "serial")
            provenance["serial"] = "Samsara gateway.serial"
        serial = clean_text(raw_serial, CODE_MAX)
        key = asset_key(serial)
        if serial is None or key is None:
            out.records.append(DesiredRecord("assets", label, rejected=f"vehicle {label}: field serial is empty"))
            continue
        if key in seen:
            out.records.append(DesiredRecord("assets", f"{key}#dup{index}", rejected=f"vehicle {label}: field serial {serial!r} duplicates another vehicle"))
            continue
        seen.add(key)
        name = clean_text(row_get(row, "name"))
        if name is None:
            name = serial
            provenance["name"] = "serial (Samsara name empty)"
        plate = clean_text(row_get(row, "licensePlate"), CODE_MAX)
        if plate:
            code = plate
            provenance["code"] = "Samsara licensePlate"
        elif samsara_id:
            code = f"Unit_{samsara_id[-4:]}"
            provenance["code"] = "Unit_<last 4 of Samsara id>"
        else:
            code = None
        fields: dict[str, Any] = {
            "name": name,
            "code": code,
            "serial": serial,
            "model": clean_text(row_get(row, "model")),
            "description": clean_text(row_get(row, "notes"), DESCRIPTION_MAX),
            "status": settings.vehicle_active_status,
        }
        vin = normalize_vin(row_get(row, "vin"))
        if vin:
            fields["vin"] = vin
        elif row_get(row, "vin"):
            out.issues.append(Issue("assets", key, "vin", f"vehicle {label}: field vin is not 17 alphanumerics, not sent"))
        year = as_int(row_get(row, "year"))
        if year is not None and 1900 <= year <= 2100:
            fields["year"] = year
        refs: dict[str, str] = {}
        driver_raw = row_get(row, "driverEmployeeNumber")
        driver = canonical_emp_id(driver_raw)
        if driver:
            refs["current_user"] = driver
            provenance["current_user"] = "Samsara static driver's employee number"
        elif driver_raw not in (None, ""):
            out.issues.append(Issue("assets", key, "driverEmployeeNumber", f"vehicle {label}: field driverEmployeeNumber is not usable"))
        out.records.append(DesiredRecord("assets", key, fields, refs, provenance))
    return out

