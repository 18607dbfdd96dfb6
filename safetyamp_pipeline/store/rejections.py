"""Rejected before send: the records the last run of each sink did not send, and why.

Each sink replaces its entity's rows at the end of its run (a run with none leaves none), so the
table always answers "what did the last run hold back" — the ledger keeps the history of writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.engine import chunked


class Rejections(StoreBase):
    def rejections_replace(self, entity: str, run_id: str | None, rows: Iterable[Mapping[str, Any]]) -> int:
        """Replace ``entity``'s rejections with ``rows`` (``key``, ``reason``, optional ``fields``:
        the names of the fields at fault). Returns how many were stored."""
        now = self._now()
        by_key: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = str(row["key"])
            by_key[key] = {
                "entity": entity,
                "record_key": key,
                "run_id": run_id,
                "reason": str(row.get("reason") or ""),
                "fields_json": codec.dumps(list(row.get("fields") or [])),
                "at": now,
            }
        rj = self._t.rejections
        with self._write() as conn:
            conn.execute(delete(rj).where(rj.c.entity == entity))
            for batch in chunked(list(by_key.values()), 2000):
                conn.execute(rj.insert(), list(batch))
        return len(by_key)

    def rejections_last(self, entity: str | None = None) -> list[dict[str, Any]]:
        """The last run's rejections (of one entity, or all), by entity and key."""
        rj = self._t.rejections
        stmt = select(rj).order_by(rj.c.entity, rj.c.record_key)
        if entity is not None:
            stmt = stmt.where(rj.c.entity == entity)
        with self._read() as conn:
            return [
                {
                    "entity": row.entity,
                    "key": row.record_key,
                    "fields": codec.loads(row.fields_json) or [],
                    "reason": row.reason,
                    "run_id": row.run_id,
                    "at": row.at,
                }
                for row in conn.execute(stmt)
            ]
