"""The store's batch writes (issue 20.2), on SQLite and PostgreSQL: several intents, mirror upserts,
ledger rows and confirmations in one transaction, all or nothing."""

from __future__ import annotations

import pytest

from safetyamp_pipeline.store import SyncStore


def test_intents_recorded_and_confirmed_together(store: SyncStore) -> None:
    store.intent_record("users", "1", "old-run", {"first_name": "Old"})
    store.intents_record_many("r1", [("users", "1", {"first_name": "Ana"}), ("users", "2", {"first_name": "Bo"}), ("sites", "9.", None)])
    open_now = {(i["entity"], i["key"]): (i["run_id"], i["payload"]) for i in store.intents_open()}
    assert open_now == {("users", "1"): ("r1", {"first_name": "Ana"}), ("users", "2"): ("r1", {"first_name": "Bo"}), ("sites", "9."): ("r1", None)}
    store.intents_confirm_many([("users", "1"), ("sites", "9.")])
    assert [(i["entity"], i["key"]) for i in store.intents_open()] == [("users", "2")]


def test_mirror_upsert_many_replaces_the_unkeyed_entry(store: SyncStore) -> None:
    store.mirror_upsert("sites", "id:7", {"id": 7, "name": "Office"})
    store.mirror_upsert("sites", "100.", {"id": 5, "name": "Old"})
    store.mirror_upsert_many("sites", [("200.", {"id": 7, "name": "Office", "job": "200."}, "id:7"), ("100.", {"id": 5, "name": "New"}, None)])
    assert store.mirror_records("sites") == {"200.": {"id": 7, "name": "Office", "job": "200."}, "100.": {"id": 5, "name": "New"}}


def test_failures_get_finds_only_the_keys_asked(store: SyncStore) -> None:
    store.failure_record("users", "1", reason="422", kind="rejected", desired_hash="h1")
    store.failure_record("users", "3", reason="503", kind="transient")
    store.failure_record("sites", "1", reason="422", kind="rejected")
    found = store.failures_get("users", ["1", "2"])
    assert set(found) == {"1"} and found["1"]["desired_hash"] == "h1"


def test_a_failed_transaction_writes_none_of_its_parts(store: SyncStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.intents_record_many("r1", [("users", "1", {"a": 1})])
        store.mirror_upsert_many("users", [("1", {"id": 1}, None)])
        store.ledger_append_many([{"run_id": "r1", "entity": "users", "key": "1", "action": "create", "status": "ok"}])
        raise RuntimeError("crash before the commit")
    assert store.intents_open() == []
    assert store.mirror_records("users") == {}
    assert store.ledger_query(run_id="r1") == []
