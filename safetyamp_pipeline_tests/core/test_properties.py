"""Property tests: normalization is idempotent, a synced state needs no more writes, hostile rows
never raise and are either planned or rejected with a reason naming the record and the field."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safetyamp_pipeline.core.normalize import (
    DESCRIPTION_MAX,
    canonical_emp_id,
    clean_email,
    clean_state,
    clean_text,
    clean_zip,
    format_date,
    normalize_gender,
    normalize_job,
    normalize_phone,
    normalize_title,
    title_key,
)
from safetyamp_pipeline.core.plan import RefIndex, plan_entity
from safetyamp_pipeline.core.settings import SyncSettings

from .factories import AS_OF, ENTITY_ORDER, base_state, desired_all, sync, writes

S = SyncSettings()
FAST = settings(max_examples=int(__import__("os").environ.get("CORE_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=300),
    st.binary(max_size=10), st.dates(), st.datetimes(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


# ----------------------------------------------------------------- idempotence

@FAST
@given(anything)
def test_normalizers_are_idempotent(value: Any):
    for fn in (clean_text, clean_email, clean_state, clean_zip, normalize_title, title_key, normalize_job,
               canonical_emp_id, format_date, normalize_gender, normalize_phone):
        once = fn(value)
        assert fn(once) == once, fn.__name__ if once is not None else None


phone_like = st.one_of(
    st.from_regex(r"\(?[2-9]\d\d\)?[ .\-]?\d{3}[ .\-]?\d{4}( x\d{1,3})?", fullmatch=True),
    st.from_regex(r"\+\d{7,15}", fullmatch=True),
    st.text(alphabet="0123456789+()-. x#", max_size=25),
)


@FAST
@given(phone_like)
def test_phone_normalization_is_idempotent_and_e164(raw: str):
    once = normalize_phone(raw)
    assert normalize_phone(once) == once
    assert once is None or re.fullmatch(r"\+[1-9]\d{1,14}", once)


# ----------------------------------------------------------------- plan -> apply -> plan

PHONES = ["225-555-0199", "(504) 555-0111", "2255550100", "555-123-4567", "12", "225-555-0199 x3", None, "+44 20 7946 0958"]
EMAILS = ["a@x.com", "A@X.com ", "b@x.com", "bad", None, "c@ x.com"]
TITLES = [" Foreman", "foreman", "Project  Engineer", "project engineer", None, "Superintendent"]
DEPTS = ["44", "07", "ZZ", " 44"]
JOBS = ["100.", " 100.", "200.", "300.", "400."]
DATES = [dt.datetime(1980, 5, 1), dt.date(2001, 2, 3), "2019-07-04", None, "bad"]


@st.composite
def vista(draw) -> dict[str, Any]:
    departments = [
        {"PRCo": 1, "PRDept": "44", "Description": draw(st.sampled_from(["Pipe", "Piping", "Pipe "])),
         "udRegion": draw(st.sampled_from(["Central", "Gulf", "central"]))},
        {"PRCo": 1, "PRDept": "07", "Description": "Elec", "udRegion": draw(st.sampled_from(["Gulf", "North"]))},
    ]
    jobs = [
        {"JCCo": 1, "Job": j, "Description": draw(st.sampled_from(["Plant", "Plant B", ""])), "JobStatus": 1,
         "Department": draw(st.sampled_from(DEPTS)), "ShipAddress": draw(st.sampled_from(["1 Main", None])),
         "ShipCity": "Baton Rouge", "ShipState": draw(st.sampled_from(["LA", "la", None])), "ShipZip": draw(st.sampled_from(["70801", 70802, None]))}
        for j in draw(st.lists(st.sampled_from(JOBS), min_size=1, max_size=4, unique=True))
    ]
    employees = []
    numbers = draw(st.lists(st.integers(min_value=1, max_value=40), max_size=12, unique=True))
    for number in numbers + draw(st.lists(st.sampled_from(numbers), max_size=1)) if numbers else []:
        employees.append({
            "PRCo": 1, "Employee": draw(st.sampled_from([number, str(number), f"00{number}"])),
            "FirstName": draw(st.sampled_from(["Ann", " Bob ", "Zoë", "Al  Bert"] * 4 + [None])),
            "MidName": draw(st.sampled_from([None, "Q", ""])), "LastName": draw(st.sampled_from(["Lee", "O'Neil"] * 6 + [None])),
            "Sex": draw(st.sampled_from(["M", "F", None, "X"])), "PRDept": draw(st.sampled_from(DEPTS)),
            "Email": draw(st.sampled_from(EMAILS + [f"e{number}@x.com"] * 8)),
            "udEmpTitle": draw(st.sampled_from(TITLES)), "BirthDate": draw(st.sampled_from(DATES)),
            "HireDate": draw(st.sampled_from(DATES[:3])),
            "TermDate": draw(st.sampled_from([None, None, None, dt.date(2025, 1, 1)])),
            "Phone": draw(st.sampled_from(PHONES)), "CellPhone": draw(st.sampled_from(PHONES)),
            "Address": draw(st.sampled_from(["1 Elm", None])), "City": "Hammond", "State": "LA",
            "Zip": draw(st.sampled_from(["70401", None])),
        })
    payroll = [
        {"PRCo": 1, "Employee": draw(st.integers(min_value=1, max_value=40)), "JCCo": 1,
         "Job": draw(st.sampled_from(JOBS)), "PREndDate": AS_OF - dt.timedelta(days=draw(st.integers(0, 120))),
         "Hrs": draw(st.integers(0, 50))}
        for _ in range(draw(st.integers(0, 15)))
    ] + [
        {"PRCo": 1, "Employee": n, "JCCo": 1, "Job": draw(st.sampled_from(JOBS)), "PREndDate": AS_OF, "Hrs": 8}
        for n in numbers if draw(st.booleans())
    ]
    entra = [
        {"employeeId": str(draw(st.integers(1, 40))), "mail": draw(st.sampled_from(["x@corp.com", "y@corp.com", "z@t.onmicrosoft.com"])),
         "accountEnabled": draw(st.booleans())}
        for _ in range(draw(st.integers(0, 4)))
    ]
    vehicles = [
        {"id": str(10**14 + n), "serial": draw(st.sampled_from([f"G{n}", f"g{n}", None])), "name": "Truck",
         "licensePlate": draw(st.sampled_from(["P1", None])), "vin": draw(st.sampled_from(["1FTFW1ET5DFC10312", "bad", None])),
         "driverEmployeeNumber": draw(st.sampled_from([None, str(n), "999"]))}
        for n in draw(st.lists(st.integers(1, 6), max_size=4, unique=True))
    ]
    return {"departments": departments, "jobs": jobs, "employees": employees, "payroll_rows": payroll,
            "entra": entra, "vehicles": vehicles}


def property_state() -> dict[str, Any]:
    """Base state plus region clusters that have an office site (for the home-site fallback)."""
    state = base_state()
    state["site_clusters"] += [
        {"id": 2, "name": "Central", "external_code": "Central", "parent_cluster_id": 1, "depth": 1, "path": "/1/"},
        {"id": 3, "name": "Gulf", "external_code": "Gulf", "parent_cluster_id": 1, "depth": 1, "path": "/1/"},
    ]
    state["sites"] += [{"id": 510, "name": "Central Office", "cluster_id": 2}, {"id": 520, "name": "Gulf Office", "cluster_id": 3}]
    return state


def _desired(v: dict[str, Any]):
    return desired_all(v["departments"], v["jobs"], v["employees"], v["payroll_rows"], v["entra"], v["vehicles"])


@FAST
@given(vista())
def test_first_sync_then_no_writes(v):
    state, _ = sync(property_state(), _desired(v))
    _, again = sync(state, _desired(v))
    assert writes(again) == []


@FAST
@given(vista(), vista())
def test_changed_sources_sync_then_no_writes(v1, v2):
    state, _ = sync(property_state(), _desired(v1))
    state, _ = sync(state, _desired(v2))
    _, again = sync(state, _desired(v2))
    assert writes(again) == []


# ----------------------------------------------------------------- hostile rows

EMPLOYEE_COLUMNS = ["PRCo", "Employee", "FirstName", "MidName", "LastName", "Sex", "PRDept", "Email", "udEmpTitle",
                    "BirthDate", "HireDate", "TermDate", "Phone", "CellPhone", "Address", "City", "State", "Zip"]
JOB_COLUMNS = ["JCCo", "Job", "Description", "Department", "JobStatus", "ShipAddress", "ShipCity", "ShipState", "ShipZip"]
DEPT_COLUMNS = ["PRCo", "PRDept", "Description", "udRegion"]
PAYROLL_COLUMNS = ["PRCo", "Employee", "JCCo", "Job", "PREndDate", "Hrs"]
VEHICLE_COLUMNS = ["id", "name", "serial", "licensePlate", "vin", "year", "model", "notes", "driverEmployeeNumber", "gateway"]
FIELD_WORDS = set(EMPLOYEE_COLUMNS + JOB_COLUMNS + DEPT_COLUMNS + VEHICLE_COLUMNS) | {
    "email", "home_site_id", "cluster_id", "parent_cluster_id", "asset_type_id", "site_id", "name", "serial", "mobile_phone"}


def hostile_row(columns: list[str], base: dict[str, Any]):
    return st.fixed_dictionaries({c: st.one_of(st.just(base.get(c)), anything) for c in columns})


good_employee = {"PRCo": 1, "Employee": 7, "FirstName": "Ann", "LastName": "Lee", "Sex": "F", "PRDept": "44",
                 "Email": "a@x.com", "HireDate": dt.date(2020, 1, 1), "Phone": "225-555-0199"}
good_job = {"JCCo": 1, "Job": "100.", "Description": "Plant", "Department": "44", "JobStatus": 1}
good_dept = {"PRCo": 1, "PRDept": "44", "Description": "Pipe", "udRegion": "Central"}
good_payroll = {"PRCo": 1, "Employee": 7, "JCCo": 1, "Job": "100.", "PREndDate": AS_OF, "Hrs": 8}
good_vehicle = {"id": "123456", "name": "Truck", "serial": "G1"}


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@settings(max_examples=int(__import__("os").environ.get("CORE_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.lists(hostile_row(EMPLOYEE_COLUMNS, good_employee), max_size=5),
    st.lists(hostile_row(JOB_COLUMNS, good_job), max_size=3),
    st.lists(hostile_row(DEPT_COLUMNS, good_dept), max_size=3),
    st.lists(hostile_row(PAYROLL_COLUMNS, good_payroll), max_size=5),
    st.lists(hostile_row(VEHICLE_COLUMNS, good_vehicle), max_size=3),
    st.lists(st.fixed_dictionaries({"employeeId": anything, "mail": anything, "accountEnabled": anything}), max_size=2),
)
def test_hostile_rows_never_raise_and_are_planned_or_rejected_with_field(employees, jobs, departments, payroll, vehicles, entra):
    desired = desired_all(departments, jobs, employees, payroll, entra, vehicles)
    state = base_state()
    for entity in ENTITY_ORDER:
        items = plan_entity(entity, desired[entity], state.get(entity, []), RefIndex.from_state(state, S), S)
        planned_keys = {i.key for i in items}
        assert {r.key for r in desired[entity].records} <= planned_keys
        for item in items:
            assert item.action in {"create", "update", "deactivate", "unchanged", "rejected"}
            if item.action == "rejected":
                assert item.reason
                assert item.key.split("#")[0] in item.reason or "row" in item.reason
                assert any(word in item.reason for word in FIELD_WORDS), item.reason
            if item.payload:
                for text in _strings(item.payload):
                    assert not CONTROL.search(text), text
                    assert len(text) <= DESCRIPTION_MAX


def test_non_record_rows_are_rejected_naming_the_row():
    desired = desired_all([None, "x"], [42], ["not a row", None], [object()], [], [3.5])
    for entity in ("sites", "users", "assets"):
        reasons = [r.rejected for r in desired[entity].records]
        assert reasons and all(r and "row" in r for r in reasons)


SA_USER_FIELDS = ["id", "emp_id", "first_name", "last_name", "email", "gender", "date_of_birth", "mobile_phone",
                  "work_phone", "home_site_id", "current_title", "system_access", "zip_code", "deleted_at"]
SA_ASSET_FIELDS = ["id", "serial", "status", "asset_type_id", "site_id", "current_user_id", "name", "code"]


@FAST
@given(
    st.lists(st.fixed_dictionaries({f: anything for f in SA_USER_FIELDS}), max_size=4),
    st.lists(st.fixed_dictionaries({f: anything for f in SA_ASSET_FIELDS}), max_size=3),
    st.lists(st.fixed_dictionaries({"id": anything, "name": anything, "ext_id": anything, "cluster_id": anything}), max_size=3),
)
def test_odd_safetyamp_state_never_breaks_planning(sa_users, sa_assets, sa_sites):
    state = property_state()
    state["users"] += sa_users
    state["assets"] += sa_assets
    state["sites"] += sa_sites
    v = {"departments": [{"PRCo": 1, "PRDept": "44", "Description": "Pipe", "udRegion": "Central"}],
         "jobs": [{"JCCo": 1, "Job": "100.", "Description": "Plant", "Department": "44"}],
         "employees": [{"PRCo": 1, "Employee": n, "FirstName": "A", "LastName": "B", "Email": f"e{n}@x.com",
                        "HireDate": dt.date(2020, 1, 1), "PRDept": "44", "Phone": "225-555-0199"} for n in (1, 2, 3)],
         "payroll_rows": [], "entra": [], "vehicles": [{"id": "1234567", "serial": "G1"}]}
    desired = _desired(v)
    for entity in ENTITY_ORDER:
        items = plan_entity(entity, desired[entity], state.get(entity, []), RefIndex.from_state(state, S), S)
        assert all(i.action in {"create", "update", "deactivate", "unchanged", "rejected"} for i in items)
