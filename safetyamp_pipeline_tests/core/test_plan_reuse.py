"""The plan and its reference index: the key table is reused only while it matches the current
records, and the result does not depend on the order SafetyAmp listed its users in."""

from __future__ import annotations

from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.plan import RefIndex, plan_entity
from safetyamp_pipeline.core.settings import SyncSettings

S = SyncSettings()


def _title(tid: int, name: str) -> dict[str, object]:
    return {"id": tid, "name": name}


def test_plan_keys_the_current_records_after_the_index_learned_a_write():
    current = [_title(20, "Foreman")]
    refs = RefIndex.from_state({"user_titles": current}, S)
    refs.learn("user_titles", _title(5, "Foreman"))  # e.g. written earlier in this run
    items = plan_entity("user_titles", [DesiredRecord("user_titles", "Foreman", {"name": "Foreman"})], current, refs, S)
    assert [(i.action, i.target_id) for i in items] == [("unchanged", 20)]


def test_plan_over_other_records_than_the_index_keys_those_records():
    refs = RefIndex.from_state({"user_titles": [_title(20, "Foreman")]}, S)
    items = plan_entity("user_titles", [DesiredRecord("user_titles", "Foreman", {"name": "Foreman"})], [], refs, S)
    assert [i.action for i in items] == ["create"]


def test_plan_over_the_indexed_records_uses_the_lowest_id_of_a_shared_key():
    current = [_title(30, "Foreman"), _title(9, " foreman ")]
    refs = RefIndex.from_state({"user_titles": current}, S)
    items = plan_entity("user_titles", [DesiredRecord("user_titles", "Foreman", {"name": "Foreman"})], current, refs, S)
    assert [i.target_id for i in items] == [9]


def _user(uid: str, emp: str, email: str) -> dict[str, object]:
    return {"id": uid, "emp_id": emp, "email": email, "first_name": "A", "last_name": "B", "system_access": 1}


def _new_user(emp: str, email: str) -> DesiredRecord:
    return DesiredRecord("users", emp, {"emp_id": emp, "first_name": "C", "last_name": "D", "email": email}, {"home_site": "100."})


SITES = [{"id": 10, "ext_id": "100.", "name": "Plant", "cluster_id": 1}]


def test_users_listed_in_any_order_resolve_a_shared_employee_to_the_lowest_id():
    for users in ([_user("ccccc", "7", "a@x.com"), _user("aaaaa", "7", "b@x.com")],
                  [_user("aaaaa", "7", "b@x.com"), _user("ccccc", "7", "a@x.com")]):
        refs = RefIndex.from_state({"users": users, "sites": SITES}, S)
        assert refs.id_of("users", "7") == "aaaaa"
        items = plan_entity("users", [DesiredRecord("users", "7", {"emp_id": "7", "email": "b@x.com"}, {"home_site": "100."})], users, refs, S)
        assert [i.target_id for i in items] == ["aaaaa"]


def test_an_email_held_twice_names_the_lowest_id_holder_whatever_the_listing_order():
    for users in ([_user("ccccc", "1", "x@y.com"), _user("aaaaa", "2", "x@y.com")],
                  [_user("aaaaa", "2", "x@y.com"), _user("ccccc", "1", "x@y.com")]):
        refs = RefIndex.from_state({"users": users, "sites": SITES}, S)
        (item,) = [i for i in plan_entity("users", [_new_user("3", "x@y.com")], users, refs, S) if i.key == "3"]
        assert item.action == "rejected"
        assert "SafetyAmp user aaaaa (emp_id 2)" in (item.reason or "")
