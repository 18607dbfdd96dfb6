"""Batched store work in the engine (issue 20.2): every write's intent is durable before it is sent,
answers are committed a batch at a time, and a run that dies mid-batch is completed by the next."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.apply import BATCH_SIZE
from safetyamp_pipeline.sync.reconcile import Reconciler, SinkOptions


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in the process."""


class TitleTenant:
    """SafetyAmp titles; checks through a second store handle that each POST's intent is committed."""

    def __init__(self, witness: SyncStore | None = None, die_after: int | None = None) -> None:
        self.titles: list[dict[str, Any]] = []
        self.witness = witness
        self.die_after = die_after
        self.unrecorded: list[str] = []

    def list(self, entity: str) -> list[dict[str, Any]]:
        return [dict(t) for t in self.titles]

    def create(self, entity: str, payload: Any) -> dict[str, Any]:
        if self.witness is not None:
            open_keys = {i["key"] for i in self.witness.intents_open(entity)}
            if payload["name"].casefold() not in open_keys:
                self.unrecorded.append(payload["name"])
        record = {"id": 100 + len(self.titles), **payload}
        self.titles.append(record)
        if self.die_after is not None and len(self.titles) >= self.die_after:
            raise Killed
        return record

    def update(self, entity: str, record_id: Any, payload: Any, method: str = "PATCH") -> dict[str, Any]:
        raise AssertionError("no update expected")


def _desired(count: int) -> list[DesiredRecord]:
    return [DesiredRecord("user_titles", f"title {n:03d}", {"name": f"Title {n:03d}"}) for n in range(count)]


def _store(tmp_path: Path) -> SyncStore:
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.mirror_replace("user_titles", {}, read_at=datetime.now(UTC))
    return store


def test_each_intent_is_committed_before_its_write_and_answers_commit_per_batch(tmp_path: Path) -> None:
    store = _store(tmp_path)
    tenant = TitleTenant(witness=SyncStore(store.url))
    write_transactions: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE":  # how the SQLite store opens each write transaction
            write_transactions.append(statement)

    event.listen(store.engine, "before_cursor_execute", on_statement)
    count = 3 * BATCH_SIZE
    report = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r1")).reconcile("user_titles", _desired(count), [])
    assert report.created == count and tenant.unrecorded == []
    assert len(write_transactions) <= count // BATCH_SIZE + 2, len(write_transactions)  # not one (or four) per create
    assert store.intents_open() == []
    assert {e["key"] for e in store.ledger_query(run_id="r1", status="ok")} == {d.key for d in _desired(count)}
    assert len(store.mirror_records("user_titles")) == count


def test_a_run_killed_mid_batch_is_completed_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    tenant = TitleTenant(die_after=BATCH_SIZE + 7)
    reconciler = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r1"))
    # A killed process writes nothing more: the answers waiting in the batch are lost.
    monkeypatch.setattr(reconciler.applier, "_finish", lambda: None)
    with pytest.raises(Killed):
        reconciler.reconcile("user_titles", _desired(80), [])
    sent = len(tenant.titles)
    unrecorded = {t["name"].casefold() for t in tenant.titles} - {e["key"] for e in store.ledger_query(status="ok")}
    assert unrecorded  # killed mid-batch: some answers were lost ...
    assert unrecorded <= {i["key"] for i in store.intents_open()}  # ... but never their intents

    tenant.die_after = None
    report = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r2")).reconcile("user_titles", _desired(80), [])
    assert len(tenant.titles) == 80  # nothing created twice
    assert report.created == 80 - sent
    assert store.intents_open() == []
    ok = store.ledger_query(entity="user_titles", status="ok")
    assert sorted(e["key"] for e in ok) == sorted(d.key for d in _desired(80))  # each write once
    assert len(store.mirror_records("user_titles")) == 80
