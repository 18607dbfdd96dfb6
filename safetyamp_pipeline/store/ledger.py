"""The ledger: an append-only record of every write (and planned/skipped write) to SafetyAmp."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.codec import require_aware
from safetyamp_pipeline.store.engine import chunked

LEDGER_STATUSES = frozenset({"ok", "failed", "planned", "skipped"})
_ID_ONLY_MAX = 40
_LEDGER_FIELDS = (
    "run_id",
    "entity",
    "key",
    "action",
    "changed_fields",
    "before",
    "after",
    "status",
    "http_status",
    "error",
    "at",
)


class Ledger(StoreBase):
    def ledger_append(
        self,
        *,
        run_id: str | None,
        entity: str,
        key: str | None,
        action: str,
        changed_fields: Iterable[str] | None = None,
        before: Any = None,
        after: Any = None,
        status: str,
        http_status: int | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append one entry. `status` is "ok" | "failed" | "planned" | "skipped"."""
        self.ledger_append_many(
            [
                {
                    "run_id": run_id,
                    "entity": entity,
                    "key": key,
                    "action": action,
                    "changed_fields": changed_fields,
                    "before": before,
                    "after": after,
                    "status": status,
                    "http_status": http_status,
                    "error": error,
                    "at": at,
                }
            ]
        )

    def ledger_append_many(self, entries: Iterable[Mapping[str, Any]]) -> int:
        """Append several entries (same keys as `ledger_append`) in one transaction."""
        rows = [self._ledger_row(entry) for entry in entries]
        with self._write() as conn:
            for batch in chunked(rows, 2000):
                conn.execute(self._t.ledger.insert(), list(batch))
        return len(rows)

    def ledger_query(
        self,
        since: datetime | None = None,
        entity: str | None = None,
        run_id: str | None = None,
        key: str | None = None,
        limit: int | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries matching every filter given, latest first (`since` is inclusive)."""
        lg = self._t.ledger
        stmt = select(lg).order_by(lg.c.at.desc(), lg.c.id.desc())
        if since is not None:
            stmt = stmt.where(lg.c.at >= require_aware(since, "since"))
        if entity is not None:
            stmt = stmt.where(lg.c.entity == entity)
        if run_id is not None:
            stmt = stmt.where(lg.c.run_id == run_id)
        if key is not None:
            stmt = stmt.where(lg.c.record_key == str(key))
        if status is not None:
            stmt = stmt.where(lg.c.status == status)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [
                {
                    "id": row.id,
                    "at": row.at,
                    "run_id": row.run_id,
                    "entity": row.entity,
                    "key": row.record_key,
                    "action": row.action,
                    "changed_fields": codec.loads(row.changed_fields_json),
                    "before": codec.loads(row.before_json),
                    "after": codec.loads(row.after_json),
                    "status": row.status,
                    "http_status": row.http_status,
                    "error": row.error,
                }
                for row in conn.execute(stmt)
            ]

    def ledger_prune_bodies(self, older_than: datetime) -> int:
        """Drop the record bodies (``before``/``after``: person data) of entries older than
        ``older_than``; the entries themselves (who, what, when, status, fields) stay, and ``after``
        keeps only the written record's SafetyAmp ``id`` (the engine derives the assets it owns from
        its creates). Returns how many entries were pruned."""
        lg = self._t.ledger
        # An id-only body is at most ~30 characters; anything longer still holds record fields.
        stmt = (
            select(lg.c.id, lg.c.after_json)
            .where(lg.c.at < require_aware(older_than, "older_than"))
            .where(or_(lg.c.before_json.is_not(None), func.length(lg.c.after_json) > _ID_ONLY_MAX))
        )
        with self._read() as conn:
            rows = [(row.id, _id_only(row.after_json)) for row in conn.execute(stmt)]
        prune = (
            update(lg)
            .where(lg.c.id == bindparam("row_id"))
            .values(before_json=None, after_json=bindparam("kept"))
        )
        with self._write() as conn:
            for batch in chunked(rows, 2000):
                conn.execute(prune, [{"row_id": row_id, "kept": kept} for row_id, kept in batch])
        return len(rows)

    def _ledger_row(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(entry) - set(_LEDGER_FIELDS)
        if unknown:
            raise TypeError(f"unknown ledger field(s): {', '.join(sorted(unknown))}")
        for required in ("entity", "action", "status"):
            if not entry.get(required):
                raise ValueError(f"ledger entry for key {entry.get('key')!r} has no {required}")
        status = entry["status"]
        if status not in LEDGER_STATUSES:
            raise ValueError(
                f"ledger entry {entry['entity']}/{entry.get('key')!r}: status {status!r} is not one of "
                f"{', '.join(sorted(LEDGER_STATUSES))}"
            )
        at = entry.get("at")
        changed = entry.get("changed_fields")
        key = entry.get("key")
        return {
            "at": require_aware(at, "at") if at is not None else self._now(),
            "run_id": entry.get("run_id"),
            "entity": entry["entity"],
            "record_key": None if key is None else str(key),
            "action": entry["action"],
            "changed_fields_json": codec.dumps(list(changed)) if changed is not None else None,
            "before_json": codec.dumps(entry.get("before")) if entry.get("before") is not None else None,
            "after_json": codec.dumps(entry.get("after")) if entry.get("after") is not None else None,
            "status": status,
            "http_status": entry.get("http_status"),
            "error": entry.get("error"),
        }


def _id_only(after_json: str | None) -> str | None:
    """The pruned form of a ledger ``after`` body: ``{"id": <id>}`` when it names one."""
    after = codec.loads(after_json)
    if isinstance(after, Mapping) and after.get("id") is not None:
        return codec.dumps({"id": after["id"]})
    return None
