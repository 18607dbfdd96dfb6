"""The SafetyAmp mirror: per entity and natural key, the last known SafetyAmp record.

Refreshed by a full read (`mirror_replace`, which also stamps `mirror_read_at`) and kept current
from every write response (`mirror_upsert` / `mirror_delete`), so an unchanged run needs no API call.

Owned records (`owned_ids` / `owned_add`): the SafetyAmp ids of records the sync created or
matched to a source record (assets matched to a Samsara vehicle), kept across runs so that only
those are ever retired. They live in the same table under the entity name `owned:<entity>`,
which no full read replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, select

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.codec import require_aware
from safetyamp_pipeline.store.engine import chunked, upsert, upsert_many

_INSERT_BATCH = 2000
OWNED_PREFIX = "owned:"


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
        rows = [_mirror_row(entity, key, record, at) for key, record in records_by_key.items()]
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

    def mirror_upsert_many(self, entity: str, records: Sequence[tuple[str, Mapping[str, Any], str | None]]) -> None:
        """`mirror_upsert` for several (key, record, replaces) of one entity in one transaction."""
        if not records:
            return
        mr = self._t.mirror_records
        now = self._now()
        gone = [{"k": str(replaces)} for key, _, replaces in records if replaces is not None and str(replaces) != str(key)]
        rows = [_mirror_row(entity, key, record, now) for key, record, _ in records]
        with self._write() as conn:
            if gone:
                conn.execute(delete(mr).where(and_(mr.c.entity == entity, mr.c.record_key == bindparam("k"))), gone)
            upsert_many(conn, mr, ("entity", "record_key"), rows)

    def owned_ids(self, entity: str) -> set[str]:
        """Ids of the `entity` records the sync created or matched (see the module docstring)."""
        mr = self._t.mirror_records
        with self._read() as conn:
            result = conn.execute(select(mr.c.record_key).where(mr.c.entity == OWNED_PREFIX + entity))
            return {str(key) for (key,) in result}

    def owned_add(self, entity: str, ids: Iterable[int | str]) -> int:
        """Remember `ids` as owned by the sync; returns how many were new."""
        wanted = {str(i) for i in ids if i is not None and str(i) != ""}
        if not wanted:
            return 0
        new = sorted(wanted - self.owned_ids(entity))
        with self._write() as conn:
            for record_id in new:  # upsert: another process may add the same id meanwhile
                upsert(
                    conn,
                    self._t.mirror_records,
                    {"entity": OWNED_PREFIX + entity, "record_key": record_id},
                    {"safetyamp_id": record_id, "record_json": "{}", "written_at": self._now()},
                )
        return len(new)

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


def _mirror_row(entity: str, key: str, record: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "entity": entity,
        "record_key": str(key),
        "safetyamp_id": _id_of(record),
        "record_json": codec.dumps(dict(record)),
        "written_at": at,
    }


def _id_of(record: Mapping[str, Any]) -> str | None:
    value = record.get("id")
    return None if value is None else str(value)
