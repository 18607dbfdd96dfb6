"""Create intents: recorded just before a POST and confirmed once the response is stored.

An intent still open at the start of a run means a create may have reached SafetyAmp without its
answer being recorded (crash, lost connection): the sink must look the record up before posting
again, so a retry never creates a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select, update

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.engine import upsert, upsert_many


class Intents(StoreBase):
    def intent_record(
        self, entity: str, key: str, run_id: str | None, payload: Mapping[str, Any] | None
    ) -> None:
        values = {
            "run_id": run_id,
            "payload_json": codec.dumps(dict(payload)) if payload is not None else None,
            "recorded_at": self._now(),
            "confirmed_at": None,
        }
        with self._write() as conn:
            upsert(conn, self._t.intents, {"entity": entity, "record_key": str(key)}, values)

    def intents_record_many(
        self, run_id: str | None, intents: Sequence[tuple[str, str, Mapping[str, Any] | None]]
    ) -> None:
        """`intent_record` for several (entity, key, payload) in one transaction."""
        now = self._now()
        rows = [
            {
                "entity": entity,
                "record_key": str(key),
                "run_id": run_id,
                "payload_json": codec.dumps(dict(payload)) if payload is not None else None,
                "recorded_at": now,
                "confirmed_at": None,
            }
            for entity, key, payload in intents
        ]
        with self._write() as conn:
            upsert_many(conn, self._t.intents, ("entity", "record_key"), rows)

    def intents_confirm_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """`intent_confirm` for several (entity, key) in one transaction."""
        rows = [{"e": entity, "k": str(key)} for entity, key in pairs]
        if not rows:
            return
        it = self._t.intents
        stmt = (
            update(it)
            .where(and_(it.c.entity == bindparam("e"), it.c.record_key == bindparam("k"), it.c.confirmed_at.is_(None)))
            .values(confirmed_at=self._now())
        )
        with self._write() as conn:
            conn.execute(stmt, rows)

    def intent_confirm(self, entity: str, key: str) -> None:
        it = self._t.intents
        with self._write() as conn:
            conn.execute(
                update(it)
                .where(it.c.entity == entity, it.c.record_key == str(key), it.c.confirmed_at.is_(None))
                .values(confirmed_at=self._now())
            )

    def intents_open(self, entity: str | None = None) -> list[dict[str, Any]]:
        """Unconfirmed intents, oldest first: `{entity, key, run_id, payload, recorded_at}`."""
        it = self._t.intents
        stmt = select(it).where(it.c.confirmed_at.is_(None)).order_by(it.c.recorded_at, it.c.record_key)
        if entity is not None:
            stmt = stmt.where(it.c.entity == entity)
        with self._read() as conn:
            return [
                {
                    "entity": row.entity,
                    "key": row.record_key,
                    "run_id": row.run_id,
                    "payload": codec.loads(row.payload_json),
                    "recorded_at": row.recorded_at,
                }
                for row in conn.execute(stmt)
            ]
