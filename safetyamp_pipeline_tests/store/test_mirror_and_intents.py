from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from safetyamp_pipeline.store import SyncStore


def test_full_read_replaces_the_mirror_and_stamps_the_read_time(store: SyncStore) -> None:
    assert store.mirror_read_at("users") is None
    assert store.mirror_records("users") == {}
    first_read = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    store.mirror_replace(
        "users",
        {
            "1234": {"id": 11, "emp_id": "1234", "current_title": {"id": 3, "name": "Foreman"}},
            "5678": {"id": 12, "emp_id": "5678"},
        },
        read_at=first_read,
    )
    store.mirror_replace("sites", {"12345.": {"id": 7}}, read_at=first_read)

    second_read = first_read + timedelta(hours=6)
    store.mirror_replace(
        "users", {"5678": {"id": 12, "emp_id": "5678", "first_name": "Ana"}}, read_at=second_read
    )

    assert store.mirror_records("users") == {"5678": {"id": 12, "emp_id": "5678", "first_name": "Ana"}}
    assert store.mirror_read_at("users") == second_read
    assert store.mirror_records("sites") == {"12345.": {"id": 7}}, "other entities untouched"
    assert store.mirror_written_at("users", "5678") == second_read
    assert store.mirror_written_at("users", "1234") is None


def test_write_responses_update_single_records_without_a_full_read(store: SyncStore) -> None:
    read_at = datetime(2024, 5, 1, tzinfo=UTC)
    store.mirror_replace("users", {"1": {"id": 1, "first_name": "A"}}, read_at=read_at)

    store.mirror_upsert("users", "1", {"id": 1, "first_name": "B"})
    store.mirror_upsert("users", "2", {"id": 2, "first_name": "C"})
    store.mirror_delete("users", "1")
    store.mirror_delete("users", "never-there")

    assert store.mirror_records("users") == {"2": {"id": 2, "first_name": "C"}}
    assert store.mirror_read_at("users") == read_at, "single writes do not count as a full read"
    assert store.mirror_written_at("users", "2") > read_at


def test_mirror_replace_handles_thousands_of_records(store: SyncStore) -> None:
    records = {str(1000 + i): {"id": i, "emp_id": str(1000 + i)} for i in range(5000)}
    store.mirror_replace("users", records)
    assert store.mirror_records("users") == records


def test_mirror_rejects_naive_read_time(store: SyncStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mirror_replace("users", {}, read_at=datetime(2024, 1, 1))


def test_create_intents_stay_open_until_confirmed(store: SyncStore) -> None:
    store.intent_record("users", "1234", "run-1", {"emp_id": "1234", "first_name": "Ana"})
    store.intent_record("users", "5678", "run-1", {"emp_id": "5678"})
    store.intent_record("sites", "12345.", "run-1", {"ext_id": "12345."})

    store.intent_confirm("users", "1234")

    open_users = store.intents_open("users")
    assert [(i["key"], i["run_id"], i["payload"]) for i in open_users] == [
        ("5678", "run-1", {"emp_id": "5678"})
    ]
    assert [i["key"] for i in store.intents_open("sites")] == ["12345."]

    # a later run records a new intent for a confirmed key: it is open again
    store.intent_record("users", "1234", "run-2", {"emp_id": "1234"})
    assert {(i["key"], i["run_id"]) for i in store.intents_open("users")} == {
        ("1234", "run-2"),
        ("5678", "run-1"),
    }


def test_an_upsert_that_replaces_a_key_drops_the_old_entry_in_the_same_write(store: SyncStore) -> None:
    read_at = datetime(2024, 5, 1, tzinfo=UTC)
    store.mirror_replace("sites", {"id:55": {"id": 55, "ext_id": None}, "9.": {"id": 9, "ext_id": "9."}}, read_at=read_at)
    store.mirror_upsert("sites", "12345.", {"id": 55, "ext_id": "12345."}, replaces="id:55")
    store.mirror_upsert("sites", "9.", {"id": 9, "ext_id": "9.", "name": "x"}, replaces="9.")
    assert store.mirror_records("sites") == {
        "12345.": {"id": 55, "ext_id": "12345."},
        "9.": {"id": 9, "ext_id": "9.", "name": "x"},
    }


def test_owned_ids_survive_full_reads_and_are_added_once(store: SyncStore) -> None:
    assert store.owned_ids("assets") == set()
    assert store.owned_add("assets", [7, "8", None]) == 2
    assert store.owned_add("assets", [8, 9]) == 1
    store.mirror_replace("assets", {"SER-1": {"id": 7, "serial": "SER-1"}}, read_at=datetime(2024, 5, 1, tzinfo=UTC))
    assert store.owned_ids("assets") == {"7", "8", "9"}
    assert store.owned_ids("sites") == set()
    assert store.mirror_records("assets") == {"SER-1": {"id": 7, "serial": "SER-1"}}
