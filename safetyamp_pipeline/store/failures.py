"""Open failures per record: what failed, why, for which desired-record hash, how often.

A rejected record (HTTP 422) is not re-sent while its desired hash is unchanged, unless an operator
asks for a retry (`failure_retry`); a transient failure is re-sent by the next run. A success
clears the failure (`failure_clear`). `failure_dismiss` hides a failure from the open list until
the record fails again with a different desired state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select, update

from safetyamp_pipeline.store import codec
from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.engine import chunked, upsert

FAILURE_KINDS = frozenset({"rejected", "transient"})


class Failures(StoreBase):
    def failure_record(
        self,
        entity: str,
        key: str,
        *,
        reason: str,
        fields: Any = None,
        desired_hash: str | None = None,
        kind: str,
    ) -> None:
        """Record (or count again) a failure. attempts += 1, first_seen kept, last_seen now; a
        pending retry request is consumed; a dismissed failure reopens if the desired hash changed."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"failure {entity}/{key}: kind {kind!r} is not 'rejected' or 'transient'")
        f = self._t.failures
        now = self._now()
        fields_json = codec.dumps(fields) if fields is not None else None
        with self._write() as conn:
            upsert(
                conn,
                f,
                {"entity": entity, "record_key": str(key)},
                {
                    "kind": kind,
                    "reason": reason,
                    "fields_json": fields_json,
                    "desired_hash": desired_hash,
                    "attempts": 1,
                    "first_seen": now,
                    "last_seen": now,
                    "retry_requested": False,
                    "dismissed": False,
                },
                update_values={
                    "kind": kind,
                    "reason": reason,
                    "fields_json": fields_json,
                    "desired_hash": desired_hash,
                    "attempts": f.c.attempts + 1,
                    "last_seen": now,
                    "retry_requested": False,
                    # Stays dismissed only while the same desired state keeps failing.
                    "dismissed": f.c.dismissed & (f.c.desired_hash == desired_hash),
                },
            )

    def failure_clear(self, entity: str, key: str) -> bool:
        """Forget the failure of (entity, key) after a success; True when there was one."""
        f = self._t.failures
        with self._write() as conn:
            result = conn.execute(delete(f).where(f.c.entity == entity, f.c.record_key == str(key)))
        return result.rowcount > 0

    def failures_open(self, entity: str | None = None, reason: str | None = None) -> list[dict[str, Any]]:
        """Failures not dismissed, most recent first. `reason` filters on an exact reason."""
        f = self._t.failures
        stmt = select(f).where(f.c.dismissed.is_(False)).order_by(f.c.last_seen.desc(), f.c.record_key)
        if entity is not None:
            stmt = stmt.where(f.c.entity == entity)
        if reason is not None:
            stmt = stmt.where(f.c.reason == reason)
        with self._read() as conn:
            return [_failure_dict(row) for row in conn.execute(stmt)]

    def failure_counts(self) -> dict[tuple[str, str], int]:
        """Open (not dismissed) failures per (entity, kind), counted in the database."""
        f = self._t.failures
        stmt = (
            select(f.c.entity, f.c.kind, func.count().label("n"))
            .where(f.c.dismissed.is_(False))
            .group_by(f.c.entity, f.c.kind)
        )
        with self._read() as conn:
            return {(str(entity), str(kind)): int(n) for entity, kind, n in conn.execute(stmt)}

    def failure_get(self, entity: str, key: str) -> dict[str, Any] | None:
        """The failure of (entity, key), dismissed or not; None when there is none."""
        f = self._t.failures
        with self._read() as conn:
            row = conn.execute(select(f).where(f.c.entity == entity, f.c.record_key == str(key))).first()
        return _failure_dict(row) if row is not None else None

    def failures_get(self, entity: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`failure_get` for several keys of one entity: key -> failure, for those that have one."""
        wanted = sorted({str(k) for k in keys})
        f = self._t.failures
        found: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for batch in chunked(wanted, 500):
                stmt = select(f).where(f.c.entity == entity, f.c.record_key.in_(list(batch)))
                for row in conn.execute(stmt):
                    found[str(row.record_key)] = _failure_dict(row)
        return found

    def failure_retry(self, entity: str | None = None, key: str | None = None, all: bool = False) -> int:
        """Ask the next run to re-send: one record (entity + key, also un-dismissing it), every open
        failure of an entity, or every open failure (`all=True`). Returns how many were marked."""
        f = self._t.failures
        if key is not None and entity is None:
            raise ValueError("failure_retry: a key needs its entity")
        if entity is None and not all:
            raise ValueError("failure_retry: name an entity (and key), or pass all=True")
        stmt = update(f)
        if key is not None:
            stmt = stmt.where(f.c.entity == entity, f.c.record_key == str(key)).values(
                retry_requested=True, dismissed=False
            )
        else:
            stmt = stmt.where(f.c.dismissed.is_(False)).values(retry_requested=True)
            if entity is not None:
                stmt = stmt.where(f.c.entity == entity)
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def failure_dismiss(self, entity: str, key: str) -> bool:
        """Hide the failure from `failures_open` (and from retries); True when there was one."""
        f = self._t.failures
        with self._write() as conn:
            result = conn.execute(
                update(f)
                .where(f.c.entity == entity, f.c.record_key == str(key))
                .values(dismissed=True, retry_requested=False)
            )
        return result.rowcount > 0


def _failure_dict(row: Any) -> dict[str, Any]:
    return {
        "entity": row.entity,
        "key": row.record_key,
        "kind": row.kind,
        "reason": row.reason,
        "fields": codec.loads(row.fields_json),
        "desired_hash": row.desired_hash,
        "attempts": row.attempts,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "retry_requested": bool(row.retry_requested),
        "dismissed": bool(row.dismissed),
    }
