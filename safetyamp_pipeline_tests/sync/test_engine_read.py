"""The engine's full read (sync/read.py) with a stand-in client and a real SQLite store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.read import MirrorReader
from safetyamp_pipeline.sync.report import SinkOptions

ORIGINAL = {"id": 5, "emp_id": "1234", "first_name": "Ana", "email": "ana@example.test"}
TWIN = {"id": 9, "emp_id": "1234", "first_name": "Anna", "email": "anna@example.test"}
OFFICE = {"id": 3, "emp_id": None, "first_name": "Front", "email": "office@example.test"}


class ListingClient:
    """Lists whatever it is given, in that order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def list(self, entity: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records]

    def create(self, entity: str, payload: Any) -> dict[str, Any]:
        raise AssertionError("no write expected")

    def update(self, entity: str, record_id: Any, payload: Any, method: str = "PATCH") -> dict[str, Any]:
        raise AssertionError("no write expected")


def test_two_users_with_one_emp_id_are_mirrored_the_same_whatever_the_listing_order(tmp_path: Path) -> None:
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    client = ListingClient()
    reader = MirrorReader(client, store, SinkOptions(run_id="r1"), logging.getLogger("test"), lambda: datetime.now(UTC))
    client.records = [OFFICE, TWIN, ORIGINAL]
    first = reader.full_read("users")
    client.records = [ORIGINAL, OFFICE, TWIN]
    second = reader.full_read("users")
    # The lowest id keeps the emp_id (as the planners choose); the twin stays, under its id.
    assert first == second == {"1234": ORIGINAL, "id:9": TWIN, "id:3": OFFICE}
    assert store.mirror_records("users") == second
    assert reader.drift["users"] == 0  # no flip-flop, so no false drift
