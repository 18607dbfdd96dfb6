"""The SafetyAmp mirror: per entity and natural key, the last known SafetyAmp record.

Refreshed by a full read (`mirror_replace`, which also stamps `mirror_read_at`) and kept current
from every write response (`mirror_upsert` / `mirror_delete`), so an unchanged run needs no API call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.codec import require_aware
from safetyamp_pipeline.store.engine import chunked, upsert

_INSERT_BATCH = 2000


class Mirror(StoreBase):
    def mirror_replace(
        self,
        entity: str,
        records_by_key: Mapping[str, Mapping[str, Any]],
        read_at: datetime | None = None,
    ) -> None:
        """Replace every mirrored record of `entity` with the result of a full read."""
        at = require_aware(read_at, "read_at") if read_at is not None else self._now()
        mr = self._t.mirror_records
        rows = [
            {
                "entity": entity,
                "record_key": str(key),
                "safetyamp_id": _id_of(record),
                "record_json": codec.dumps(dict(record)),
                "written_at": at,
            }
            for key, record in records_by_key.items()
        ]
        with self._write() as conn:
            conn.execute(delete(mr).where(mr.c.entity == entity))
            for batch in chunked(rows, _INSERT_BATCH):
                conn.execute(mr.insert(), list(batch))
            upsert(
                conn,
                self._t.mirror_reads,
                {"entity": entity},
                {"read_at": at, "record_count": len(rows)},
            )

    def mirror_upsert(self, entity: str, key: str, record: Mapping[str, Any], replaces: str | None = None) -> None:
        """Store the record a write returned (or a single GET). `replaces`: another key the same
        record was mirrored under until now (e.g. before the write gave it its natural key), dropped
        in the same transaction."""
        with self._write() as conn:
            if replaces is not None and str(replaces) != str(key):
                mr = self._t.mirror_records
                conn.execute(delete(mr).where(mr.c.entity == entity, mr.c.record_key == str(replaces)))
            upsert(
                conn,
                self._t.mirror_records,
                {"entity": entity, "record_key": str(key)},
                {
                    "safetyamp_id": _id_of(record),
                    "record_json": codec.dumps(dict(record)),
                    "written_at": self._now(),
                },
            )

    def mirror_delete(self, entity: str, key: str) -> None:
        mr = self._t.mirror_records
        with self._write() as conn:
            conn.execute(delete(mr).where(mr.c.entity == entity, mr.c.record_key == str(key)))

    def mirror_records(self, entity: str) -> dict[str, dict[str, Any]]:
        """Natural key → last known SafetyAmp record (as the API returned it)."""
        mr = self._t.mirror_records
        with self._read() as conn:
            result = conn.execute(select(mr.c.record_key, mr.c.record_json).where(mr.c.entity == entity))
            return {key: codec.loads(text) for key, text in result}

    def mirror_read_at(self, entity: str) -> datetime | None:
        """When `entity` was last read in full (None: never)."""
        reads = self._t.mirror_reads
        with self._read() as conn:
            return conn.execute(select(reads.c.read_at).where(reads.c.entity == entity)).scalar()

    def mirror_written_at(self, entity: str, key: str) -> datetime | None:
        """When the mirrored record of (entity, key) was last read or written (None: unknown key)."""
        mr = self._t.mirror_records
        with self._read() as conn:
            return conn.execute(
                select(mr.c.written_at).where(mr.c.entity == entity, mr.c.record_key == str(key))
            ).scalar()


def _id_of(record: Mapping[str, Any]) -> str | None:
    value = record.get("id")
    return None if value is None else str(value)
