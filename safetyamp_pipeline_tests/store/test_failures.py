from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline_tests.store.conftest import StoreTarget


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(store_target: StoreTarget):
    clock = Clock()
    s = SyncStore(store_target.url, schema=store_target.schema, clock=clock)
    yield s, clock
    s.close()


def test_recording_twice_counts_attempts_and_keeps_first_seen(clocked) -> None:
    store, clock = clocked
    first = clock.now
    store.failure_record(
        "users",
        "1234",
        reason="email: has already been taken",
        fields={"email": ["has already been taken"]},
        desired_hash="h1",
        kind="rejected",
    )
    clock.now = first + timedelta(hours=1)
    store.failure_record(
        "users",
        "1234",
        reason="email: has already been taken",
        fields={"email": ["has already been taken"]},
        desired_hash="h1",
        kind="rejected",
    )

    failure = store.failure_get("users", "1234")
    assert failure["attempts"] == 2
    assert failure["first_seen"] == first
    assert failure["last_seen"] == first + timedelta(hours=1)
    assert failure["kind"] == "rejected"
    assert failure["fields"] == {"email": ["has already been taken"]}
    assert failure["desired_hash"] == "h1"
    assert failure["retry_requested"] is False and failure["dismissed"] is False


def test_retry_dismiss_clear_lifecycle(clocked) -> None:
    store, clock = clocked
    store.failure_record("users", "1", reason="r1", fields=["email"], desired_hash="a", kind="rejected")
    clock.now += timedelta(minutes=1)
    store.failure_record("users", "2", reason="timeout", fields=None, desired_hash="b", kind="transient")
    clock.now += timedelta(minutes=1)
    store.failure_record("sites", "12345.", reason="r1", fields=["zip"], desired_hash="c", kind="rejected")

    assert [f["key"] for f in store.failures_open()] == ["12345.", "2", "1"]
    assert [f["key"] for f in store.failures_open(entity="users")] == ["2", "1"]
    assert [f["key"] for f in store.failures_open(reason="r1")] == ["12345.", "1"]

    assert store.failure_retry("users", "1") == 1
    assert store.failure_get("users", "1")["retry_requested"] is True
    assert store.failure_get("users", "2")["retry_requested"] is False

    # the retried record fails again: the request is consumed, attempts grow
    store.failure_record("users", "1", reason="r1", fields=["email"], desired_hash="a", kind="rejected")
    assert store.failure_get("users", "1")["retry_requested"] is False
    assert store.failure_get("users", "1")["attempts"] == 2

    assert store.failure_dismiss("users", "1") is True
    assert [f["key"] for f in store.failures_open(entity="users")] == ["2"]
    assert store.failure_get("users", "1")["dismissed"] is True
    # the same desired state failing again stays dismissed; a changed one reopens
    store.failure_record("users", "1", reason="r1", fields=["email"], desired_hash="a", kind="rejected")
    assert store.failure_get("users", "1")["dismissed"] is True
    store.failure_record("users", "1", reason="r1", fields=["email"], desired_hash="a2", kind="rejected")
    assert store.failure_get("users", "1")["dismissed"] is False

    store.failure_dismiss("users", "1")
    assert store.failure_retry(all=True) == 2, "bulk retry skips the dismissed failure"
    assert store.failure_get("users", "1")["retry_requested"] is False
    assert store.failure_retry("users", "1") == 1, "an explicit retry un-dismisses"
    assert store.failure_get("users", "1")["dismissed"] is False
    assert store.failure_retry("sites") == 1

    assert store.failure_clear("users", "1") is True
    assert store.failure_clear("users", "1") is False
    assert store.failure_get("users", "1") is None
    assert [f["key"] for f in store.failures_open()] == ["12345.", "2"]


def test_bad_calls_are_refused(store: SyncStore) -> None:
    with pytest.raises(ValueError, match="kind 'permanent'"):
        store.failure_record("users", "1", reason="x", fields=None, desired_hash=None, kind="permanent")
    with pytest.raises(ValueError, match="all=True"):
        store.failure_retry()
    with pytest.raises(ValueError, match="needs its entity"):
        store.failure_retry(key="1")
    assert store.failure_dismiss("users", "none") is False
    assert store.failures_open() == []


def test_failure_counts_group_open_failures_by_entity_and_kind(store: SyncStore) -> None:
    store.failure_record("users", "1", reason="r", desired_hash="a", kind="rejected")
    store.failure_record("users", "2", reason="r", desired_hash="a", kind="rejected")
    store.failure_record("users", "3", reason="r", desired_hash="a", kind="transient")
    store.failure_record("sites", "9.", reason="r", desired_hash="a", kind="rejected")
    store.failure_dismiss("sites", "9.")
    assert store.failure_counts() == {("users", "rejected"): 2, ("users", "transient"): 1}
