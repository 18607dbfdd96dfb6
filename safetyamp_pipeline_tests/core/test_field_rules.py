"""Issue 15 field rules in core: rehires, values that cannot be sent, site addresses and PUT bodies,
duplicate natural keys in SafetyAmp, and which vehicles may be retired."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import sqlalchemy as sa

from safetyamp_pipeline.clients import vista_tables as vt
from safetyamp_pipeline.clients.vista import EMPLOYEE_COLUMNS, VistaClient
from safetyamp_pipeline.core.desired import desired_assets, desired_sites, desired_users
from safetyamp_pipeline.core.plan import (
    DuplicateKey,
    RefIndex,
    duplicate_keys,
    matched_asset_ids,
    plan_entity,
)
from safetyamp_pipeline.core.rows import is_terminated
from safetyamp_pipeline.core.settings import SyncSettings

from .factories import (
    AS_OF,
    base_state,
    department,
    desired_all,
    employee,
    item_for,
    job,
    payroll,
    sync,
    vehicle,
)

S = SyncSettings()
WEEK_END = dt.date(2026, 11, 22)


def synced(employees=None, vehicles=None, jobs=None):
    employees = [employee(123)] if employees is None else employees
    desired = desired_all([department()], jobs or [job()], employees,
                          [payroll(int(e["Employee"]), "12345.", WEEK_END) for e in employees], None, vehicles)
    state, _ = sync(base_state(), desired)
    return state


def plan_users(state, employees):
    desired = desired_users(employees, [payroll(int(e["Employee"]), "12345.", WEEK_END) for e in employees], [],
                            [job()], [department()], S, AS_OF)
    return plan_entity("users", desired, state["users"], RefIndex.from_state(state, S), S)


def plan_sites(state, jobs, settings=S):
    return plan_entity("sites", desired_sites(jobs, [department()], settings), state["sites"],
                       RefIndex.from_state(state, settings), settings)


def the_user(state, emp_id="123"):
    return next(u for u in state["users"] if u.get("emp_id") == emp_id)


# ----------------------------------------------------------------- 15.2 rehires

REHIRE = {"HireDate": dt.datetime(2024, 3, 1), "TermDate": dt.datetime(2023, 6, 30)}


@pytest.mark.parametrize(
    ("hire", "term", "terminated"),
    [
        (dt.datetime(2024, 3, 1), None, False),
        (dt.datetime(2024, 3, 1), dt.datetime(2023, 6, 30), False),  # rehire, old TermDate left in place
        (dt.date(2024, 3, 1), "2023-06-30", False),  # mixed types as a fixture may hold them
        (dt.datetime(2020, 1, 1), dt.datetime(2023, 6, 30), True),
        (dt.datetime(2023, 6, 30), dt.datetime(2023, 6, 30), True),  # same day: not earlier than HireDate
        (None, dt.datetime(2023, 6, 30), True),
        (dt.datetime(2024, 3, 1), "not a date", True),  # an unreadable TermDate still terminates
    ],
)
def test_terminated_only_when_termdate_is_not_earlier_than_hiredate(hire, term, terminated):
    assert is_terminated({"HireDate": hire, "TermDate": term}) is terminated


def test_rehired_employee_with_old_termdate_is_an_active_user():
    record = desired_users([employee(123, **REHIRE)], [payroll(123, "12345.", WEEK_END)], [], [job()], [department()], S, AS_OF)
    user = next(r for r in record.records if r.key == "123")
    assert not user.deactivate and user.rejected is None and user.fields["system_access"] is True


def test_rehire_whose_user_lost_system_access_gets_it_back():
    state = synced()
    the_user(state)["system_access"] = False  # deactivated when the employee left
    item = item_for(plan_users(state, [employee(123, **REHIRE, City="Hammond")]), "123")
    assert item.action == "update" and item.method == "PATCH"
    assert item.payload["system_access"] == 1 and "system_access" in item.changed_fields


def test_vista_query_and_core_agree_on_who_is_still_employed(tmp_path):
    rows = [
        {**employee(1), "TermDate": None},
        {**employee(2), "HireDate": dt.datetime(2024, 3, 1), "TermDate": dt.datetime(2023, 6, 30)},  # rehire
        {**employee(3), "HireDate": dt.datetime(2020, 1, 1), "TermDate": dt.datetime(2023, 6, 30)},
        {**employee(4), "HireDate": dt.datetime(2023, 6, 30), "TermDate": dt.datetime(2023, 6, 30)},
    ]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'vista.db'}")
    vt.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(vt.bPREH.insert(), [{c: r.get(c) for c in EMPLOYEE_COLUMNS} for r in rows])
    # A window that starts after every TermDate: the query keeps exactly the employees still employed.
    read = VistaClient(engine).employees(term_window_days=0, as_of=dt.date(2100, 1, 1))
    engine.dispose()
    assert [r["Employee"] for r in read] == [r["Employee"] for r in rows if not is_terminated(r)] == [1, 2]


# ----------------------------------------------------------------- 15.3 values that cannot be sent


@pytest.mark.parametrize(("cell", "phone"), [("12", "555 12"), (None, None), ("  ", "")])
def test_invalid_or_blank_phone_is_never_sent_and_safetyamp_keeps_its_value(cell, phone):
    state = synced([employee(123, CellPhone="504-555-0111", Phone="225-555-0199")])
    assert the_user(state)["mobile_phone"] == "+15045550111"
    item = item_for(plan_users(state, [employee(123, CellPhone=cell, Phone=phone)]), "123")
    assert item.action == "unchanged", item
    item = item_for(plan_users(state, [employee(123, CellPhone=cell, Phone=phone, City="Hammond")]), "123")
    assert item.action == "update" and item.changed_fields == ["city"]
    assert "mobile_phone" not in item.payload and "work_phone" not in item.payload


def test_valid_cellphone_is_sent_while_an_invalid_phone_is_left_out():
    state = synced([employee(123, CellPhone="504-555-0111", Phone="225-555-0199")])
    item = item_for(plan_users(state, [employee(123, CellPhone="504-555-0122", Phone="0123")]), "123")
    assert item.changed_fields == ["mobile_phone"] and item.payload["mobile_phone"] == "+15045550122"
    assert "work_phone" not in item.payload


def test_invalid_phone_is_left_out_of_a_create():
    desired = desired_users([employee(123, CellPhone="12", Phone="0123456789")], [payroll(123, "12345.", WEEK_END)], [],
                            [job()], [department()], S, AS_OF)
    state = synced([])
    item = item_for(plan_entity("users", desired, [], RefIndex.from_state(state, S), S), "123")
    assert item.action == "create" and "mobile_phone" not in item.payload and "work_phone" not in item.payload


def test_invalid_email_is_never_sent():
    state = synced()
    item = item_for(plan_users(state, [employee(123, Email="not-an-email", City="Hammond")]), "123")
    assert item.action == "rejected" and item.payload is None and "Email" in (item.reason or "")


# ----------------------------------------------------------------- 15.4 site addresses and PUT bodies

EMPTY_ADDRESS = {"ShipAddress": None, "ShipCity": "", "ShipState": None, "ShipZip": "  "}


def test_site_is_created_with_placeholders_for_an_empty_address():
    s = SyncSettings(default_state="TX", placeholder_zip="11111")
    item = item_for(plan_sites(synced(), [job("99999.", **EMPTY_ADDRESS)], s), "99999.")
    assert item.action == "create"
    assert (item.payload["street"], item.payload["city"], item.payload["state"], item.payload["zip_code"]) == (
        "Unknown", "Unknown", "TX", "11111")


def test_empty_vista_address_never_overwrites_a_real_one():
    state = synced()  # the site was created with 1 Main St, Baton Rouge, LA 70801
    assert plan_sites(state, [job(**EMPTY_ADDRESS)])[0].action == "unchanged"
    item = plan_sites(state, [job(desc="Plant B", **EMPTY_ADDRESS)])[0]
    assert item.action == "update" and item.changed_fields == ["name"]
    assert (item.payload["street"], item.payload["city"], item.payload["state"], item.payload["zip_code"]) == (
        "1 Main St", "Baton Rouge", "LA", "70801")


def test_a_real_address_replaces_the_placeholders():
    state = synced(jobs=[job(**EMPTY_ADDRESS)])
    item = plan_sites(state, [job()])[0]
    assert item.action == "update" and set(item.changed_fields) == {"street", "city", "zip_code"}  # state: LA both


def test_site_put_sends_back_the_fields_the_sync_does_not_own():
    state = synced()
    site = next(s for s in state["sites"] if s.get("ext_id") == "12345.")
    kept = {"street2": "Gate 4", "latitude": "30.45", "longitude": "-91.18", "naics_code": "2371", "em_enabled": True,
            "country": "CA", "timezone": "America/Denver"}
    site.update(kept)
    item = plan_sites(state, [job(desc="Plant B")])[0]
    assert item.method == "PUT" and item.changed_fields == ["name"]
    assert {k: item.payload.get(k) for k in kept} == kept
    assert "created_at" not in item.payload and "id" not in item.payload


def test_asset_put_sends_back_its_location():
    state = synced(vehicles=[vehicle()])
    state["assets"][0]["location_id"] = 42
    items = plan_entity("assets", desired_assets([vehicle(name="Truck 2")], S), state["assets"], RefIndex.from_state(state, S), S)
    assert items[0].method == "PUT" and items[0].payload["location_id"] == 42


# ----------------------------------------------------------------- 15.6 duplicate natural keys in SafetyAmp


def duplicated_state():
    state = synced([employee(123), employee(124)])
    kept = the_user(state, "123")
    dup = {**kept, "id": "zzzzz", "email": "old123@example.com", "mobile_phone": "+15045550177", "city": "Elsewhere"}
    state["users"].append(dup)
    site = next(s for s in state["sites"] if s.get("ext_id") == "12345.")
    state["sites"].append({**site, "id": 900, "name": "12345. - Old twin", "street": "9 Old Rd"})
    return state, kept, dup


def test_duplicate_keys_are_reported_with_the_lowest_id_kept_whatever_the_listing_order():
    state, kept, dup = duplicated_state()
    for order in (state["users"], list(reversed(state["users"]))):
        assert duplicate_keys("users", order) == [DuplicateKey("users", "123", kept["id"], ("zzzzz",))]
    site_ids = sorted(s["id"] for s in state["sites"] if s.get("ext_id") == "12345.")
    assert duplicate_keys("sites", reversed(state["sites"])) == [DuplicateKey("sites", "12345.", site_ids[0], (900,))]
    assert duplicate_keys("user_titles", state["user_titles"]) == []


def test_duplicates_cause_no_flip_flop_and_no_false_drift():
    state, _, _ = duplicated_state()
    employees = [employee(123), employee(124)]
    plans = []
    for seed in range(6):
        shuffled = {k: list(v) for k, v in state.items()}
        for records in shuffled.values():
            random.Random(seed).shuffle(records)
        plans.append([i.to_row() for i in plan_users(shuffled, employees)]
                     + [i.to_row() for i in plan_sites(shuffled, [job()])])
    assert all(p == plans[0] for p in plans)
    assert all(row["action"] == "unchanged" for row in plans[0])  # the kept records match: the twins cause no write


def test_duplicate_records_keep_their_values_in_the_uniqueness_indexes():
    state, _, dup = duplicated_state()
    items = plan_users(state, [employee(123), employee(124, Email="old123@example.com", CellPhone="504-555-0177")])
    item = item_for(items, "124")
    assert item.action == "rejected" and "zzzzz" in (item.reason or "")  # the twin still holds the e-mail
    items = plan_users(state, [employee(123), employee(124, CellPhone="504-555-0177")])
    item = item_for(items, "124")
    assert "mobile_phone" not in (item.payload or {}) and any("zzzzz" in n for n in item.notes)


# ----------------------------------------------------------------- 15.8 which vehicles may be retired


def test_only_owned_vehicles_are_retired_never_one_added_by_hand():
    state = synced(vehicles=[vehicle()])
    ours = state["assets"][0]["id"]
    state["assets"].append({"id": 77, "serial": "RENTAL1", "name": "Rental", "asset_type_id": 3183, "site_id": 500, "status": 1})
    refs = RefIndex.from_state(state, S)
    items = plan_entity("assets", desired_assets([], S), state["assets"], refs, S, owned_asset_ids={ours})
    assert [(i.key, i.action) for i in items] == [("GABC1234", "deactivate")]
    assert plan_entity("assets", desired_assets([], S), state["assets"], refs, S) == []  # default: retire nothing


def test_matched_asset_ids_are_the_assets_this_plan_matched():
    state = synced(vehicles=[vehicle(), vehicle(serial="G2", vid="2")])
    ids = {a["id"] for a in state["assets"]}
    items = plan_entity("assets", desired_assets([vehicle(), vehicle(serial="G2", vid="2", name="Renamed")], S),
                        state["assets"], RefIndex.from_state(state, S), S)
    assert matched_asset_ids(items) == ids
