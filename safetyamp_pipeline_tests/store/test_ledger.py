from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from safetyamp_pipeline.store import SyncStore

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _fill(store: SyncStore) -> None:
    store.ledger_append(
        run_id="r1",
        entity="users",
        key="1234",
        action="create",
        changed_fields=None,
        before=None,
        after={"first_name": "Ana"},
        status="ok",
        http_status=201,
        error=None,
        at=T0,
    )
    store.ledger_append(
        run_id="r1",
        entity="users",
        key="5678",
        action="update",
        changed_fields=["email"],
        before={"email": "a@x.com"},
        after={"email": "b@x.com"},
        status="failed",
        http_status=422,
        error="email: has already been taken",
        at=T0 + timedelta(minutes=1),
    )
    store.ledger_append(
        run_id="r2",
        entity="sites",
        key="12345.",
        action="create",
        changed_fields=None,
        before=None,
        after={"name": "Depot"},
        status="planned",
        http_status=None,
        error=None,
        at=T0 + timedelta(hours=1),
    )
    store.ledger_append(
        run_id="r2",
        entity="users",
        key="1234",
        action="update",
        changed_fields=["city"],
        before={"city": "A"},
        after={"city": "B"},
        status="ok",
        http_status=200,
        error=None,
        at=T0 + timedelta(hours=2),
    )


def test_entries_come_back_latest_first_with_all_fields(store: SyncStore) -> None:
    _fill(store)
    entries = store.ledger_query()
    assert [(e["run_id"], e["key"], e["action"]) for e in entries] == [
        ("r2", "1234", "update"),
        ("r2", "12345.", "create"),
        ("r1", "5678", "update"),
        ("r1", "1234", "create"),
    ]
    failed = entries[2]
    assert failed["status"] == "failed" and failed["http_status"] == 422
    assert failed["changed_fields"] == ["email"]
    assert failed["before"] == {"email": "a@x.com"} and failed["after"] == {"email": "b@x.com"}
    assert failed["error"] == "email: has already been taken"
    assert failed["at"] == T0 + timedelta(minutes=1)


def test_filters_combine(store: SyncStore) -> None:
    _fill(store)
    assert [e["key"] for e in store.ledger_query(entity="users")] == ["1234", "5678", "1234"]
    assert [e["key"] for e in store.ledger_query(run_id="r1")] == ["5678", "1234"]
    assert [e["action"] for e in store.ledger_query(entity="users", key="1234")] == ["update", "create"]
    assert [e["key"] for e in store.ledger_query(since=T0 + timedelta(hours=1))] == ["1234", "12345."]
    assert [e["key"] for e in store.ledger_query(since=T0 + timedelta(hours=1), entity="users")] == ["1234"]
    assert len(store.ledger_query(limit=2)) == 2
    assert [e["key"] for e in store.ledger_query(status="failed")] == ["5678"]
    assert store.ledger_query(run_id="nope") == []


def test_entries_without_time_get_now_and_same_time_keeps_append_order(store: SyncStore) -> None:
    store.ledger_append_many(
        [
            {"run_id": "r", "entity": "assets", "key": str(i), "action": "create", "status": "ok", "at": T0}
            for i in range(3)
        ]
    )
    store.ledger_append(
        run_id="r",
        entity="assets",
        key="now",
        action="create",
        status="skipped",
        changed_fields=None,
        before=None,
        after=None,
        http_status=None,
        error=None,
    )
    keys = [e["key"] for e in store.ledger_query(entity="assets")]
    assert keys == ["now", "2", "1", "0"]
    assert abs((datetime.now(UTC) - store.ledger_query(key="now")[0]["at"]).total_seconds()) < 60


def test_bad_entries_are_refused_and_name_the_problem(store: SyncStore) -> None:
    with pytest.raises(ValueError, match="status 'success'"):
        store.ledger_append(run_id="r", entity="users", key="1", action="create", status="success")
    with pytest.raises(TypeError, match="unknown ledger field"):
        store.ledger_append_many([{"entity": "users", "action": "create", "status": "ok", "colour": "red"}])
    with pytest.raises(ValueError, match="timezone-aware"):
        store.ledger_append(
            run_id="r", entity="users", key="1", action="create", status="ok", at=datetime(2024, 1, 1)
        )
    assert store.ledger_query() == []
