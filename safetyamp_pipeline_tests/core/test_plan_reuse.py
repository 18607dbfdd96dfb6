"""The plan reuses the reference index's key table only while it matches the current records."""

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
