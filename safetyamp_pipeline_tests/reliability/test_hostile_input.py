"""Hostile Vista rows, end to end: desired state -> plan -> the SafetyAmp emulator's own validation.

core's property tests feed generic random values into desired/plan. These go further: targeted
hostile values (SQL and HTML fragments, control characters, very long and Unicode strings, numbers
as strings, dates out of range) next to a known-good row, and every planned write is sent, in order
and with the ids of the records created before it, to the validators the sandbox SafetyAmp uses.
Asserted: nothing raises; every record is planned or rejected with a reason naming its key and a
field; the good row is always created; no payload carries a control character or a value longer
than core's documented limit; dates are real ISO dates between core's bounds; SafetyAmp accepts
every payload except for uniqueness conflicts (which the sink heals).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safetyamp_pipeline.core import normalize as n
from safetyamp_pipeline.core.plan import RefIndex, plan_entity, resolve_deferred
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.sandbox.safetyamp_store import SafetyAmpState
from safetyamp_pipeline.sandbox.safetyamp_validation import VALIDATORS
from safetyamp_pipeline_tests.core.factories import AS_OF, ENTITY_ORDER, base_state, desired_all

S = SyncSettings()
EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "40"))
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

SQL = ["'; DROP TABLE bPREH;--", "1 OR 1=1", "Robert'); DELETE FROM users;--", "\" OR \"\"=\""]
HTML = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "&lt;b&gt;", "</td><td>"]
WEIRD = ["", " ", "\t\n", "\x00", "A\x00B", "Ann\u200bLee", "\u202eevil", "💥🚒", "Zoë", "Ñandú", "名前",
         "x" * 300, "y" * 5000, "NULL", "None", "nan", "-1", "0", "00000", "1e308", "١٢٣"]
hostile_text = st.one_of(
    st.sampled_from(SQL + HTML + WEIRD),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FFF), max_size=400),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(SQL + HTML), st.sampled_from(["\x07", "\r\n", "\u2028", ""]),
              st.text(max_size=20)),
)
hostile_number = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([" 00042 ", "42.0", "4 2", "0x2A", "+42", "-0"]),
)
hostile_date = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.sampled_from(["1899-12-31", "2101-01-01", "0000-00-00", "2020-02-30", "31/12/1980", "1980-12-31T00:00:00",
                     "yesterday", "", "19801231"]),
)
hostile_value = st.one_of(st.none(), st.booleans(), hostile_text, hostile_number, hostile_date,
                          st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1))

EMPLOYEE_COLUMNS = {
    "PRCo": hostile_number, "Employee": hostile_number, "FirstName": hostile_text, "MidName": hostile_text,
    "LastName": hostile_text, "Sex": hostile_text, "PRDept": hostile_text, "Email": hostile_text,
    "udEmpTitle": hostile_text, "BirthDate": hostile_date, "HireDate": hostile_date, "TermDate": hostile_date,
    "Phone": hostile_text, "CellPhone": hostile_text, "Address": hostile_text, "City": hostile_text,
    "State": hostile_text, "Zip": hostile_text,
}
JOB_COLUMNS = {"JCCo": hostile_number, "Job": hostile_text, "Description": hostile_text, "Department": hostile_text,
               "JobStatus": hostile_number, "ShipAddress": hostile_text, "ShipCity": hostile_text,
               "ShipState": hostile_text, "ShipZip": hostile_text}
DEPT_COLUMNS = {"PRCo": hostile_number, "PRDept": hostile_text, "Description": hostile_text, "udRegion": hostile_text}
VEHICLE_COLUMNS = {"id": hostile_text, "name": hostile_text, "serial": hostile_text, "licensePlate": hostile_text,
                   "vin": hostile_text, "year": hostile_number, "model": hostile_text, "driverEmployeeNumber": hostile_text}

GOOD_DEPT = {"PRCo": 1, "PRDept": "44", "Description": "Pipe", "udRegion": "Central"}
GOOD_JOB = {"JCCo": 1, "Job": "100.", "Description": "Plant", "Contract": "100.", "Department": "44", "JobStatus": 1,
            "ShipAddress": "1 Main St", "ShipCity": "Baton Rouge", "ShipState": "LA", "ShipZip": "70801"}
GOOD_EMPLOYEE = {"PRCo": 1, "Employee": 7, "FirstName": "Ann", "LastName": "Lee", "Sex": "F", "PRDept": "44",
                 "Email": "ann.lee@example.com", "udEmpTitle": "Welder", "BirthDate": dt.date(1980, 5, 1),
                 "HireDate": dt.date(2020, 1, 1), "TermDate": None, "CellPhone": "225-555-0199",
                 "Address": "2 Oak St", "City": "Baton Rouge", "State": "LA", "Zip": "70801"}
GOOD_PAYROLL = {"PRCo": 1, "Employee": 7, "JCCo": 1, "Job": "100.", "PREndDate": AS_OF, "Hrs": 8}
GOOD_VEHICLE = {"id": "281474976710001", "name": "Truck 1", "serial": "GOOD-SERIAL-1", "vin": None}


def _row(columns: dict[str, Any], good: dict[str, Any]):
    """A row of the right shape whose every field is the good value or a hostile one."""
    return st.fixed_dictionaries({c: st.one_of(st.just(good.get(c)), strategy, hostile_value) for c, strategy in columns.items()})


# Field -> core's documented maximum length (core/normalize.py).
LIMITS = {
    "first_name": n.TEXT_MAX, "middle_name": n.TEXT_MAX, "last_name": n.TEXT_MAX, "name": n.TEXT_MAX,
    "street": n.TEXT_MAX, "city": n.TEXT_MAX, "state": n.STATE_MAX, "zip_code": n.ZIP_MAX, "email": n.EMAIL_MAX,
    "emp_id": n.EMP_ID_MAX, "ext_id": n.CODE_MAX, "external_code": n.CODE_MAX, "serial": n.CODE_MAX,
    "code": n.CODE_MAX, "description": n.DESCRIPTION_MAX,
}
DATE_FIELDS = ("date_of_birth", "current_hire_date", "rehire_date")
FIELD_WORDS = set(EMPLOYEE_COLUMNS) | set(JOB_COLUMNS) | set(DEPT_COLUMNS) | set(VEHICLE_COLUMNS) | set(LIMITS) | {
    "home_site_id", "cluster_id", "parent_cluster_id", "asset_type_id", "site_id", "mobile_phone", "home site",
    "current_title", "Job", "department", "cluster", "region", "row"}


def _limit(entity: str, field: str) -> int:
    return LIMITS.get(field, n.DESCRIPTION_MAX)


def _check_payload(entity: str, key: str, payload: dict[str, Any]) -> None:
    for field, value in payload.items():
        if isinstance(value, str):
            assert not CONTROL.search(value), (entity, key, field, value)
            assert value == value.strip() or field == "description", (entity, key, field, value)
            assert len(value) <= _limit(entity, field), (entity, key, field, len(value))
        if field in DATE_FIELDS and value is not None:
            day = dt.date.fromisoformat(value)
            assert n.MIN_YEAR <= day.year <= n.MAX_YEAR, (entity, key, field, value)


def _server_state() -> SafetyAmpState:
    document = base_state()
    document["roles"] = [{**r, "account_default": 1 if r["id"] == 7 else 0} for r in document["roles"]]
    return SafetyAmpState.from_document(document, "hostile-input test")


def _send_all(desired: dict[str, Any]) -> tuple[dict[str, list], dict[str, list]]:
    """Plan each entity against the emulator's state and send every write to its validators."""
    server = _server_state()
    refused: dict[str, list] = {}
    items_by_entity = {}
    for entity in ENTITY_ORDER:
        current = server.rendered_document()
        refs = RefIndex.from_state(current, S)
        items = plan_entity(entity, desired[entity], current.get(entity, []), refs, S)
        items_by_entity[entity] = items
        records = {r.key: r for r in desired[entity].records}
        assert set(records) <= {i.key for i in items}, f"{entity}: a desired record is neither planned nor rejected"
        for item in items:
            if item.action == "rejected":
                assert item.reason and item.reason.strip()
                assert any(word in item.reason for word in FIELD_WORDS), item.reason
                continue
            if item.action not in ("create", "update", "deactivate"):
                continue
            item = resolve_deferred(item, refs)
            if item.deferred:
                continue  # waits for a parent the plan could not create: reported, never sent
            _check_payload(entity, item.key, item.payload)
            mode = "create" if item.action == "create" else ("patch" if item.method == "PATCH" else "put")
            record = server.get(entity, item.target_id) if item.target_id is not None else None
            changes, errors = VALIDATORS[entity](dict(item.payload), server, mode, record)
            messages = errors.body().get("errors", {}) if errors else {}
            problems = {f: m for f, m in messages.items() if not any("already been taken" in x for x in m)}
            if problems:
                refused.setdefault(entity, []).append((item.key, problems, item.payload))
                continue
            if errors:
                continue  # a uniqueness conflict: the sink re-reads and heals it
            written = server.insert(entity, changes) if item.action == "create" else server.update(entity, item.target_id, changes)
            refs.learn(entity, server.render(entity, written))
    return refused, items_by_entity


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.lists(_row(EMPLOYEE_COLUMNS, GOOD_EMPLOYEE), max_size=6),
    st.lists(_row(JOB_COLUMNS, GOOD_JOB), max_size=3),
    st.lists(_row(DEPT_COLUMNS, GOOD_DEPT), max_size=3),
    st.lists(_row(VEHICLE_COLUMNS, GOOD_VEHICLE), max_size=3),
    st.lists(st.fixed_dictionaries({"employeeId": hostile_value, "mail": hostile_value, "accountEnabled": hostile_value}), max_size=2),
)
def test_hostile_rows_end_to_end_are_planned_safely_or_rejected(employees, jobs, departments, vehicles, entra) -> None:
    desired = desired_all(
        [GOOD_DEPT, *departments], [GOOD_JOB, *jobs], [GOOD_EMPLOYEE, *employees],
        [GOOD_PAYROLL], entra, [GOOD_VEHICLE, *vehicles],
    )
    refused, _ = _send_all(desired)
    assert not refused, f"SafetyAmp would refuse planned payloads: {refused}"


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row(EMPLOYEE_COLUMNS, GOOD_EMPLOYEE), min_size=1, max_size=8))
def test_one_bad_row_never_stops_the_good_one(employees) -> None:
    """The known-good employee (its number made unique) is always created, whatever its neighbours hold."""
    good = {**GOOD_EMPLOYEE, "Employee": 987654, "Email": "only.once@example.org", "CellPhone": "504-555-0142",
            "FirstName": "Bea", "LastName": "Once"}
    hostile = [e for e in employees if str(e.get("Employee")).strip() not in ("987654",)]
    payroll = [{**GOOD_PAYROLL, "Employee": 987654}]
    desired = desired_all([GOOD_DEPT], [GOOD_JOB], [*hostile, good], payroll, [], [])
    refused, items = _send_all(desired)
    assert not refused
    mine = [i for i in items["users"] if i.key == "987654"]
    assert mine and mine[0].action == "create", [(i.key, i.action, i.reason) for i in mine]


def test_region_cluster_code_respects_the_code_limit() -> None:
    region = "Region " + "x" * 150
    desired = desired_all([{**GOOD_DEPT, "udRegion": region}], [GOOD_JOB], [GOOD_EMPLOYEE], [GOOD_PAYROLL], [], [])
    _, items = _send_all(desired)
    codes = [i.payload.get("external_code") for i in items["site_clusters"] if i.payload]
    assert all(len(c or "") <= n.CODE_MAX for c in codes), [len(c or "") for c in codes]
    # The department gets no cluster, and the issue names the field.
    assert not any(c and c.startswith("Region x") for c in codes)
    issues = [i for i in desired["site_clusters"].issues if i.field == "udRegion"]
    assert issues and "longer than" in issues[0].message
