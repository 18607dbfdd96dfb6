"""The engine's apply step (sync/apply.py via the Reconciler) with a stand-in SafetyAmp and a real
SQLite store: conflicts heal on one re-read per entity and run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safetyamp_pipeline.clients.errors import ValidationRejected
from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.reconcile import Reconciler, SinkOptions


class HandKeptTenant:
    """SafetyAmp where someone created the titles by hand after the sync's last read."""

    def __init__(self, names: list[str]) -> None:
        self.titles = [{"id": 100 + n, "name": name} for n, name in enumerate(names)]
        self.lists = 0
        self.creates = 0

    def list(self, entity: str) -> list[dict[str, Any]]:
        assert entity == "user_titles"
        self.lists += 1
        return [dict(t) for t in self.titles]

    def create(self, entity: str, payload: Any) -> dict[str, Any]:
        self.creates += 1
        raise ValidationRejected("SafetyAmp POST /api/user_titles: 422", status=422,
                                 errors={"name": ["The name has already been taken."]})

    def update(self, entity: str, record_id: Any, payload: Any, method: str = "PATCH") -> dict[str, Any]:
        raise AssertionError("no update expected")


def test_twenty_conflicts_cost_one_re_read(tmp_path: Path) -> None:
    names = [f"Title {n:02d}" for n in range(20)]
    tenant = HandKeptTenant(names)
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.mirror_replace("user_titles", {}, read_at=datetime.now(UTC))  # a fresh mirror without them
    desired = [DesiredRecord("user_titles", name.casefold(), {"name": name}) for name in names]
    reconciler = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r1"))
    report = reconciler.reconcile("user_titles", desired, [])
    assert tenant.creates == 20
    assert tenant.lists == 1
    assert report.healed == 20 and report.unchanged == 20 and report.failed == 0
    assert {r["id"] for r in store.mirror_records("user_titles").values()} == {t["id"] for t in tenant.titles}


def test_progress_reports_each_planned_write_once_it_is_handled(tmp_path: Path) -> None:
    names = [f"Title {n:02d}" for n in range(3)]
    tenant = HandKeptTenant(names[:1])  # the first one exists already: unchanged, not a write
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.mirror_replace("user_titles", {}, read_at=datetime(2000, 1, 1, tzinfo=UTC))  # stale: read in full
    seen: list[tuple[int, int]] = []
    reconciler = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r1"), progress=lambda *a: seen.append(a))
    desired = [DesiredRecord("user_titles", name.casefold(), {"name": name}) for name in names]
    reconciler.reconcile("user_titles", desired, [])
    assert seen == [(0, 2), (1, 2), (2, 2), (2, 2)]


class ConcurrentWriterTenant(HandKeptTenant):
    """Another writer creates the titles while the sync runs: each read shows one more of them."""

    def list(self, entity: str) -> list[dict[str, Any]]:
        self.lists += 1
        return [dict(t) for t in self.titles[: self.lists]]


def test_a_conflict_the_re_read_cannot_explain_is_retried_after_another_read_not_resent(tmp_path: Path) -> None:
    names = ["Title A", "Title B"]
    tenant = ConcurrentWriterTenant(names)
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.mirror_replace("user_titles", {}, read_at=datetime.now(UTC))
    desired = [DesiredRecord("user_titles", name.casefold(), {"name": name}) for name in names]
    report = Reconciler(tenant, store, SyncSettings(), SinkOptions(run_id="r1")).reconcile("user_titles", desired, [])
    # A: refused, the re-read shows it. B: refused, the mirror (that re-read) does not explain it, so
    # it is not sent again blindly; the retry pass reads again and finds it.
    assert tenant.creates == 2
    assert tenant.lists == 2
    assert report.failed == 0 and report.unchanged == 1 and report.healed == 1
    assert store.failures_open(entity="user_titles") == []
