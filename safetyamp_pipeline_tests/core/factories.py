"""Small builders of Vista rows and SafetyAmp states for the core tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from safetyamp_pipeline.core.desired import (
    desired_assets,
    desired_site_clusters,
    desired_sites,
    desired_titles,
    desired_users,
)
from safetyamp_pipeline.core.plan import RefIndex, plan_entity
from safetyamp_pipeline.core.settings import SyncSettings

from .simulated_server import apply_plan

AS_OF = dt.date(2026, 11, 26)
ENTITY_ORDER = ("site_clusters", "sites", "user_titles", "users", "assets")


def department(code: str = "44", desc: str = "Pipe", region: str = "Central", **extra: Any) -> dict[str, Any]:
    return {"PRCo": 1, "PRDept": code, "Description": desc, "udRegion": region, **extra}


def job(number: str = "12345.", desc: str = "Plant A", dept: str = "44", **extra: Any) -> dict[str, Any]:
    row = {
        "JCCo": 1, "Job": number, "Description": desc, "Contract": number, "JobStatus": 1, "Department": dept,
        "ShipAddress": "1 Main St", "ShipCity": "Baton Rouge", "ShipState": "LA", "ShipZip": "70801",
    }
    row.update(extra)
    return row


def employee(number: int = 123, **extra: Any) -> dict[str, Any]:
    row = {
        "PRCo": 1, "Employee": number, "FirstName": "Ann", "MidName": None, "LastName": "Lee", "Sex": "F",
        "PRDept": "44", "Email": f"e{number}@example.com", "udEmpTitle": "Foreman",
        "BirthDate": dt.datetime(1990, 1, 2), "HireDate": dt.datetime(2020, 1, 1), "TermDate": None,
        "Phone": None, "CellPhone": None, "Address": "1 Elm", "City": "Baton Rouge", "State": "LA", "Zip": "70801",
    }
    row.update(extra)
    return row


def payroll(emp: int, job_no: str, end: dt.date, hrs: float = 40, **extra: Any) -> dict[str, Any]:
    return {"PRCo": 1, "Employee": emp, "JCCo": 1, "Job": job_no, "PREndDate": end, "Hrs": hrs, **extra}


def vehicle(serial: str = "GABC1234", vid: str = "281474976710655", **extra: Any) -> dict[str, Any]:
    row = {"id": vid, "name": "Truck 1", "serial": serial, "licensePlate": "ABC123", "model": "F-150",
           "vin": "1FTFW1ET5DFC10312", "year": "2019", "notes": "blue", "driverEmployeeNumber": None}
    row.update(extra)
    return row


def base_state() -> dict[str, list[dict[str, Any]]]:
    return {
        "site_clusters": [{"id": 1, "name": "I&I", "parent_cluster_id": None, "external_code": None, "depth": 0, "path": "/"}],
        "sites": [{"id": 500, "name": "Yard", "ext_id": None, "cluster_id": 1}],
        "user_titles": [],
        "users": [],
        "roles": [{"id": 7, "name": "Field"}, {"id": 8, "name": "Supervisor"}],
        "asset_types": [{"id": 3183, "name": "Vehicles", "site_id": 500}],
        "assets": [],
    }


def desired_all(
    departments: list[Any], jobs: list[Any], employees: list[Any], payroll_rows: list[Any] | None = None,
    entra: list[Any] | None = None, vehicles: list[Any] | None = None, settings: SyncSettings | None = None,
) -> dict[str, Any]:
    s = settings or SyncSettings()
    return {
        "site_clusters": desired_site_clusters(departments, s),
        "sites": desired_sites(jobs, departments, s),
        "user_titles": desired_titles(employees, s),
        "users": desired_users(employees, payroll_rows or [], entra or [], jobs, departments, s, AS_OF),
        "assets": desired_assets(vehicles or [], s),
    }


def sync(state: dict[str, Any], desired: dict[str, Any], settings: SyncSettings | None = None):
    """Plan and apply every entity in dependency order, the way the sinks do. Returns (state, items)."""
    s = settings or SyncSettings()
    items_by_entity = {}
    for entity in ENTITY_ORDER:
        refs = RefIndex.from_state(state, s)
        items = plan_entity(entity, desired[entity], state.get(entity, []), refs, s)
        items_by_entity[entity] = items
        state = apply_plan(state, items)
    return state, items_by_entity


def writes(items_by_entity: dict[str, list[Any]]) -> list[Any]:
    return [i for items in items_by_entity.values() for i in items if i.is_write]


def item_for(items: list[Any], key: str):
    matches = [i for i in items if i.key == key]
    assert len(matches) == 1, f"expected one plan item for {key!r}, got {matches}"
    return matches[0]
