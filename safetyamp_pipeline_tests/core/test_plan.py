"""Plans against a SafetyAmp state: exact payloads, changed fields only, no writes on the 2nd run."""

from __future__ import annotations

import datetime as dt
import json

from safetyamp_pipeline.core.desired import desired_assets, desired_users
from safetyamp_pipeline.core.models import DesiredRecord, desired_hash
from safetyamp_pipeline.core.plan import (
    PlanItem,
    RefIndex,
    mass_deactivation_reason,
    natural_key,
    plan_entity,
    resolve_deferred,
)
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
    writes,
)
from .simulated_server import apply_plan

S = SyncSettings()
WEEK_END = dt.date(2026, 11, 22)


def first_sync(departments=None, jobs=None, employees=None, payroll_rows=None, entra=None, vehicles=None):
    departments = [department()] if departments is None else departments
    jobs = [job()] if jobs is None else jobs
    employees = [employee(123)] if employees is None else employees
    payroll_rows = [payroll(123, "12345.", WEEK_END)] if payroll_rows is None else payroll_rows
    desired = desired_all(departments, jobs, employees, payroll_rows, entra, vehicles)
    state, items = sync(base_state(), desired)
    return state, items


def user(state, emp_id):
    return next(u for u in state["users"] if u.get("emp_id") == emp_id)


def replan(state, entity, desired_set):
    return plan_entity(entity, desired_set, state.get(entity, []), RefIndex.from_state(state, S), S)


def users_for(employees, payroll_rows=None, jobs=None, departments=None):
    return desired_users(employees, payroll_rows if payroll_rows is not None else [payroll(123, "12345.", WEEK_END)], [],
                         jobs or [job()], departments or [department()], S, AS_OF)


# ----------------------------------------------------------------- first load


def test_first_load_creates_everything_once_then_nothing():
    state, items = first_sync(vehicles=[vehicle()])
    actions = {e: [(i.key, i.action) for i in its] for e, its in items.items()}
    assert actions["site_clusters"] == [("I&I", "unchanged"), ("Central", "create"), ("44", "create")]
    assert actions["sites"] == [("12345.", "create")]
    assert actions["user_titles"] == [("foreman", "create")]
    assert actions["users"] == [("123", "create")]
    assert actions["assets"] == [("GABC1234", "create")]
    _, again = sync(state, desired_all([department()], [job()], [employee(123)], [payroll(123, "12345.", WEEK_END)], None, [vehicle()]))
    assert writes(again) == []


def test_department_cluster_waits_for_its_new_region_via_deferred_ref():
    _, items = first_sync()
    dept = item_for(items["site_clusters"], "44")
    assert dept.deferred == {"parent_cluster_id": ["site_clusters", "Central"]}
    refs = RefIndex.from_state({"site_clusters": [{"id": 1, "name": "I&I", "parent_cluster_id": None},
                                                  {"id": 9, "name": "Central", "external_code": "Central", "parent_cluster_id": 1}]}, S)
    resolved = resolve_deferred(dept, refs)
    assert resolved.payload["parent_cluster_id"] == 9 and resolved.deferred == {}


def test_user_created_with_final_values():
    state, items = first_sync(employees=[employee(123, Phone="225-555-0199", Sex="F")])
    create = item_for(items["users"], "123")
    site_id = next(s["id"] for s in state["sites"] if s.get("ext_id") == "12345.")
    title_id = state["user_titles"][0]["id"]
    p = create.payload
    assert create.method == "POST"
    assert p["home_site_id"] == site_id and p["current_title_id"] == title_id
    assert p["roles"] == [{"id": 7}] and p["sites"] == []
    assert p["system_access"] == 1 and p["text_opt_out"] == 1 and p["timezone"] == "America/Chicago"
    assert p["gender"] == 0 and p["emp_id"] == "123" and p["mobile_phone"] == "+12255550199"
    assert None not in p.values()
    stored = user(state, "123")
    assert isinstance(stored["id"], str) and len(stored["id"]) == 5
    assert stored["current_title"] == {"id": title_id, "name": "Foreman"}
    assert stored["system_access"] is True


def test_site_payload_uses_ext_id_and_cluster():
    state, items = first_sync()
    create = item_for(items["sites"], "12345.")
    cluster_44 = next(c["id"] for c in state["site_clusters"] if c.get("external_code") == "44")
    assert create.payload["ext_id"] == "12345." and "external_code" not in create.payload
    assert create.payload["cluster_id"] == cluster_44 and create.payload["name"] == "12345. - Plant A"


# ----------------------------------------------------------------- clusters / sites drift


def test_renamed_department_updates_name_with_full_put_body():
    state, _ = first_sync()
    desired = desired_all([department("44", "Piping")], [job()], [employee(123)])
    items = replan(state, "site_clusters", desired["site_clusters"])
    upd = item_for(items, "44")
    assert upd.action == "update" and upd.method == "PUT" and upd.changed_fields == ["name"]
    assert upd.payload == {"name": "44 - Piping", "external_code": "44", "parent_cluster_id": upd.payload["parent_cluster_id"],
                           "osha_establishment": 0}
    assert upd.payload["parent_cluster_id"] is not None
    assert sum(1 for i in items if i.action == "create") == 0


def test_department_moved_region_is_reparented():
    state, _ = first_sync()
    desired = desired_all([department("44", "Pipe", "Gulf")], [job()], [employee(123)])
    state2, items = sync(state, desired)
    upd = item_for(items["site_clusters"], "44")
    assert upd.action == "update" and upd.changed_fields == ["parent_cluster_id"]
    gulf = next(c for c in state2["site_clusters"] if c.get("external_code") == "Gulf")
    assert next(c for c in state2["site_clusters"] if c.get("external_code") == "44")["parent_cluster_id"] == gulf["id"]


def test_job_changes_reach_site_and_rename_does_not_create_twin():
    state, _ = first_sync()
    desired = desired_all([department("44"), department("07", "Elec", "Central")],
                          [job("12345.", "Plant B", "07", ShipAddress="9 Oak", ShipZip="70802")], [employee(123)])
    state2, items = sync(state, desired)
    upd = item_for(items["sites"], "12345.")
    assert upd.action == "update" and upd.method == "PUT"
    assert set(upd.changed_fields) == {"name", "cluster_id", "street", "zip_code"}
    assert upd.payload["ext_id"] == "12345." and upd.payload["timezone"] == "America/Chicago"
    assert len([s for s in state2["sites"] if s.get("ext_id")]) == 1


def test_legacy_site_without_ext_id_is_adopted_by_name():
    state = base_state()
    state["site_clusters"] += [{"id": 2, "name": "Central", "external_code": "Central", "parent_cluster_id": 1},
                               {"id": 3, "name": "44 - Pipe", "external_code": "44", "parent_cluster_id": 2}]
    state["sites"].append({"id": 77, "name": "12345. - Plant A", "ext_id": None, "cluster_id": 3,
                           "street": "1 Main St", "city": "Baton Rouge", "state": "LA", "zip_code": "70801"})
    desired = desired_all([department()], [job()], [])
    items = replan(state, "sites", desired["sites"])
    upd = item_for(items, "12345.")
    assert upd.action == "update" and upd.target_id == 77 and upd.changed_fields == ["ext_id"]


def test_titles_never_duplicated_case_or_space_insensitive():
    state = base_state()
    state["user_titles"] = [{"id": 5, "name": "PROJECT  engineer"}]
    desired = desired_all([department()], [job()], [employee(1, udEmpTitle="Project Engineer")])
    items = replan(state, "user_titles", desired["user_titles"])
    assert [(i.action, i.target_id) for i in items] == [("unchanged", 5)]


# ----------------------------------------------------------------- users drift


def test_update_sends_only_changed_fields_plus_core_and_female_propagates():
    state, _ = first_sync(employees=[employee(123, Sex="M")])
    items = replan(state, "users", users_for([employee(123, Sex="F", City="Lafayette")]))
    upd = item_for(items, "123")
    assert upd.action == "update" and upd.method == "PATCH"
    assert sorted(upd.changed_fields) == ["city", "gender"]
    assert upd.payload == {"first_name": "Ann", "last_name": "Lee", "email": "e123@example.com", "gender": 0, "city": "Lafayette"}


def test_email_compared_case_insensitively_and_dates_in_iso_form():
    state, _ = first_sync()
    u = user(state, "123")
    u["email"] = "E123@Example.COM"
    u["date_of_birth"] = "1990-01-02T00:00:00.000000Z"
    items = replan(state, "users", users_for([employee(123)]))
    assert item_for(items, "123").action == "unchanged"


def test_create_only_fields_are_never_rewritten():
    state, _ = first_sync()
    u = user(state, "123")
    u["roles"], u["timezone"], u["text_opt_out"], u["sites"] = [{"id": 8}], "America/Denver", 0, [{"id": 1}]
    items = replan(state, "users", users_for([employee(123)]))
    assert item_for(items, "123").action == "unchanged"


def test_title_change_is_sent_as_current_title_id():
    state, _ = first_sync()
    state["user_titles"].append({"id": 99, "name": "Superintendent"})
    items = replan(state, "users", users_for([employee(123, udEmpTitle="superintendent")]))
    upd = item_for(items, "123")
    assert upd.changed_fields == ["current_title"] and upd.payload["current_title_id"] == 99


def test_system_access_reenabled_together_with_other_changes():
    state, _ = first_sync()
    user(state, "123")["system_access"] = False
    items = replan(state, "users", users_for([employee(123, City="Hammond")]))
    upd = item_for(items, "123")
    assert set(upd.changed_fields) == {"system_access", "city"}
    assert upd.payload["system_access"] == 1 and upd.payload["city"] == "Hammond"


def test_cleared_middle_name_is_sent_as_null():
    state, _ = first_sync(employees=[employee(123, MidName="B")])
    items = replan(state, "users", users_for([employee(123, MidName=None)]))
    upd = item_for(items, "123")
    assert upd.changed_fields == ["middle_name"] and upd.payload["middle_name"] is None


def test_terminated_employee_deactivated_once_and_not_created():
    state, _ = first_sync()
    desired = users_for([employee(123, TermDate=dt.date(2026, 11, 1)), employee(124, TermDate=dt.date(2026, 1, 1))])
    items = replan(state, "users", desired)
    deact = item_for(items, "123")
    assert deact.action == "deactivate" and deact.method == "PATCH"
    assert deact.payload == {"first_name": "Ann", "last_name": "Lee", "email": "e123@example.com", "system_access": 0}
    none = item_for(items, "124")
    assert none.action == "unchanged" and none.payload is None and "not created" in none.reason
    state2 = apply_plan(state, items)
    assert user(state2, "123")["system_access"] is False
    assert [i for i in replan(state2, "users", desired) if i.is_write] == []


def test_user_without_emp_id_is_never_touched():
    state, _ = first_sync()
    state["users"].append({"id": "zzzzz", "emp_id": None, "first_name": "Admin", "last_name": "X", "email": "admin@x.com",
                           "system_access": True})
    items = replan(state, "users", users_for([employee(123)]))
    assert all(i.target_id != "zzzzz" for i in items)


def test_existing_user_matched_by_canonical_emp_id():
    state, _ = first_sync()
    user(state, "123")["emp_id"] = "00123"
    items = replan(state, "users", users_for([employee(123)]))
    assert item_for(items, "123").action == "unchanged"


def test_home_site_falls_back_to_region_office_lowest_id():
    state, _ = first_sync()
    central = next(c["id"] for c in state["site_clusters"] if c.get("external_code") == "Central")
    state["sites"] += [{"id": 902, "name": "Office B", "cluster_id": central}, {"id": 901, "name": "Office A", "cluster_id": central}]
    desired = users_for([employee(555)], payroll_rows=[])
    create = item_for(replan(state, "users", desired), "555")
    assert create.action == "create" and create.payload["home_site_id"] == 901


def test_unresolved_home_site_rejects_create_with_reason():
    state, _ = first_sync()
    create = item_for(replan(state, "users", users_for([employee(555)], payroll_rows=[])), "555")
    assert create.action == "rejected" and "home_site_id" in create.reason and "555" in create.reason


def test_email_or_mobile_held_by_another_safetyamp_user():
    state, _ = first_sync(employees=[employee(123, Phone="225-555-0199")])
    desired = users_for([employee(123, Phone="225-555-0199"), employee(124, Email="E123@example.com"),
                         employee(125, Phone="504-555-0111")],
                        payroll_rows=[payroll(n, "12345.", WEEK_END) for n in (123, 124, 125)])
    state["users"].append({"id": "other", "emp_id": "777", "first_name": "O", "last_name": "P",
                           "email": "o@x.com", "mobile_phone": "+15045550111"})
    items = replan(state, "users", desired)
    assert item_for(items, "124").action == "rejected" and "email" in item_for(items, "124").reason
    create = item_for(items, "125")
    assert create.action == "create" and "mobile_phone" not in create.payload
    assert create.payload["work_phone"] == "+15045550111"
    assert any("mobile_phone" in n for n in create.notes)


# ----------------------------------------------------------------- assets


def vehicle_state():
    state, _ = first_sync(vehicles=[vehicle(driverEmployeeNumber="123")])
    return state


def test_asset_created_with_configured_type_site_and_driver():
    state = vehicle_state()
    asset = state["assets"][0]
    assert asset["asset_type_id"] == 3183 and asset["site_id"] == 500 and asset["status"] == 1
    assert asset["current_user_id"] == user(state, "123")["id"]
    assert "vin" not in asset  # accepted on write, not part of the GET shape


def test_unknown_driver_sent_as_null_with_note():
    state = base_state()
    state["users"] = []
    items = plan_entity("assets", desired_assets([vehicle(driverEmployeeNumber="999")], S), [], RefIndex.from_state(state, S), S)
    create = item_for(items, "GABC1234")
    assert create.action == "create" and "current_user_id" not in create.payload
    assert any("999" in n for n in create.notes)


def test_vehicle_gone_from_samsara_is_retired_once():
    state = vehicle_state()
    state["assets"].append({"id": 50, "serial": "OTHER", "asset_type_id": 1, "status": 1})  # not a vehicle
    owned = [a["id"] for a in state["assets"]]
    items = plan_entity("assets", desired_assets([], S), state["assets"], RefIndex.from_state(state, S), S, owned_asset_ids=owned)
    retire = item_for(items, "GABC1234")
    assert retire.action == "deactivate" and retire.method == "PUT" and retire.payload["status"] == 0
    assert retire.payload["serial"] == "GABC1234" and retire.payload["asset_type_id"] == 3183
    assert all(i.key != "OTHER" for i in items)
    state2 = apply_plan(state, items)
    again = plan_entity("assets", desired_assets([], S), state2["assets"], RefIndex.from_state(state2, S), S, owned_asset_ids=owned)
    assert [i.action for i in again] == ["unchanged"]


def test_missing_vehicle_asset_type_rejects_with_reason():
    state = base_state()
    state["asset_types"] = []
    items = plan_entity("assets", desired_assets([vehicle()], S), [], RefIndex.from_state(state, S), S)
    assert items[0].action == "rejected" and "Vehicles" in items[0].reason


def test_vehicle_type_and_site_names_are_configuration():
    state = base_state()
    state["sites"].append({"id": 600, "name": "Shop", "cluster_id": 1})
    state["asset_types"].append({"id": 4000, "name": "Trucks", "site_id": 600})
    s = SyncSettings(vehicle_asset_type_name="Trucks", vehicle_site_name="Shop")
    items = plan_entity("assets", desired_assets([vehicle()], s), [], RefIndex.from_state(state, s), s)
    assert items[0].payload["asset_type_id"] == 4000 and items[0].payload["site_id"] == 600


# ----------------------------------------------------------------- misc contracts


def test_natural_keys():
    assert natural_key("site_clusters", {"name": " I&I ", "parent_cluster_id": None, "external_code": None}) == "I&I"
    assert natural_key("site_clusters", {"name": "44 - X", "parent_cluster_id": 2, "external_code": " 44"}) == "44"
    assert natural_key("sites", {"ext_id": " 12345. "}) == "12345."
    assert natural_key("user_titles", {"name": " Project  ENGINEER"}) == "project engineer"
    assert natural_key("users", {"emp_id": "00123 "}) == "123"
    assert natural_key("users", {"emp_id": None}) is None
    assert natural_key("assets", {"serial": "gabc"}) == "GABC"


def test_plan_items_are_json_able_and_round_trip():
    _, items = first_sync()
    for item in [i for its in items.values() for i in its]:
        row = json.loads(json.dumps(item.to_row()))
        assert PlanItem.from_row(row) == item


def test_desired_hash_on_every_item():
    _, items = first_sync()
    assert all(i.desired_hash for its in items.values() for i in its)


def test_desired_hash_is_the_hash_of_the_planned_record_whether_read_early_or_late():
    record = DesiredRecord("users", "5", rejected="employee 5: field Email is empty")
    (item,) = plan_entity("users", [record], [], None, S)
    assert item.desired_hash == desired_hash(record)
    assert item.desired_hash == desired_hash(record)  # computed once, kept
    assert PlanItem("users", "5", "unchanged", desired_hash="ab12").desired_hash == "ab12"
    assert PlanItem("users", "5", "unchanged").desired_hash is None


def test_rejected_desired_record_is_planned_as_rejected():
    items = plan_entity("users", [DesiredRecord("users", "5", rejected="employee 5: field Email is empty")], [], None, S)
    assert [(i.action, i.reason) for i in items] == [("rejected", "employee 5: field Email is empty")]


def test_mass_deactivation_guard():
    items = [PlanItem("users", str(n), "deactivate") for n in range(6)]
    assert mass_deactivation_reason(items, 20, S) is not None
    assert mass_deactivation_reason(items, 1000, S) is None
    assert mass_deactivation_reason(items[:4], 4, S) is None


def test_value_given_up_in_the_same_plan_is_taken_after_the_release():
    rows = [payroll(n, "12345.", WEEK_END) for n in (10, 20)]
    state, _ = first_sync(employees=[employee(10, Phone="225-555-0199"), employee(20, Phone="225-555-0199")], payroll_rows=rows)
    assert "mobile_phone" not in user(state, "20") or user(state, "20").get("mobile_phone") is None
    # employee 10 gets a cell phone: their old number goes to employee 20 in the same run
    desired = users_for([employee(10, Phone="225-555-0199", CellPhone="504-555-0111"), employee(20, Phone="225-555-0199")],
                        payroll_rows=rows)
    items = replan(state, "users", desired)
    keys = [i.key for i in items if i.is_write]
    assert keys == ["10", "20"]
    assert item_for(items, "20").payload["mobile_phone"] == "+12255550199"
    state2 = apply_plan(state, items)
    assert [i for i in replan(state2, "users", desired) if i.is_write] == []


def test_swapped_mobile_phones_are_not_sent():
    rows = [payroll(n, "12345.", WEEK_END) for n in (10, 20)]
    state, _ = first_sync(employees=[employee(10, CellPhone="225-555-0199"), employee(20, CellPhone="504-555-0111")], payroll_rows=rows)
    desired = users_for([employee(10, CellPhone="504-555-0111"), employee(20, CellPhone="225-555-0199")], payroll_rows=rows)
    items = replan(state, "users", desired)
    assert all(i.action == "unchanged" for i in items)
    assert all(any("mobile_phone not sent" in n for n in i.notes) for i in items)


def test_odd_safetyamp_records_do_not_break_planning():
    state, _ = first_sync()
    state["users"] += [
        {"id": ["x"], "emp_id": "5"}, {"id": "abcde", "emp_id": 123.0, "current_title": "Foreman", "roles": None,
                                      "email": ["bad"], "mobile_phone": 5, "system_access": "yes"},
        {"id": "fffff", "emp_id": "9", "deleted_at": "2025-01-01 00:00:00"}, "not a record",
    ]
    state["sites"].append({"id": None, "ext_id": "12345."})
    items = replan(state, "users", users_for([employee(123), employee(9)], payroll_rows=[payroll(n, "12345.", WEEK_END) for n in (123, 9)]))
    assert {i.key: i.action for i in items}["9"] == "create"  # the soft-deleted user is not matched


def test_a_plan_reuses_the_index_filtering_only_for_the_unchanged_state_list():
    users = [{"id": "abcde", "emp_id": "5", "email": "a@x.com"}, {"id": "fghij", "emp_id": "6", "deleted_at": "2026-01-01"}]
    refs = RefIndex.from_state({"users": users}, S)
    assert refs.live_if_from("users", users) == [users[0]]
    assert refs.live_if_from("users", list(users)) is None  # another list
    users.append({"id": "klmno", "emp_id": "7"})
    assert refs.live_if_from("users", users) is None  # appended since
    users.pop()
    users[0] = {"id": "abcde", "emp_id": "5", "email": "b@x.com"}
    assert refs.live_if_from("users", users) is None  # a record replaced since


def test_the_unchanged_user_shortcut_agrees_with_the_field_by_field_diff():
    from safetyamp_pipeline.core.planners.common import diff_present
    from safetyamp_pipeline.core.planners.users import _COMPARED_FROM_FIELDS, _same_compared_values

    base = {"emp_id": "5", "first_name": "Ann", "last_name": "Lee", "email": "a@x.com", "system_access": True, "zip_code": "70801"}
    cases = [
        {},  # identical
        {"system_access": 1},  # equal value, other type: the shortcut must defer to the diff
        {"zip_code": 70801},
        {"first_name": "Ann "},
        {"email": None},
        {"zip_code": None},
    ]
    for edit in cases:
        existing = {**base, **edit}
        same = _same_compared_values(base, existing)
        changed, _, _ = diff_present(base, existing, _COMPARED_FROM_FIELDS)
        assert not same or changed == [], edit
        assert same == (edit == {}), edit
    without_zip = {k: v for k, v in base.items() if k != "zip_code"}  # a compared field SafetyAmp lacks
    assert not _same_compared_values(base, without_zip)
    assert diff_present(base, without_zip, _COMPARED_FROM_FIELDS)[0] == ["zip_code"]
