"""Leases: one holder at a time for a named piece of work, across processes and pods.

The sinks take the lease ``safetyamp_api`` while they read SafetyAmp's state, plan and write, so
two runs never plan creates from the same state. Dagster's pool ``safetyamp_api`` is meant to do
this, but its slot claim checks and assigns in separate statements: two runs that reach the pool
at the same moment can both get its one slot (seen: 9 of 30 simultaneous claims on SQLite), and
both then create the same records. The lease is one compare-and-set row update, so it holds.

A lease expires `ttl` after it was last taken or renewed, so a run killed while holding it
(SIGKILL, node lost) blocks the others for at most `ttl`. Times are this process's clock: the
default ttl is minutes, far beyond any clock skew between pods.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from safetyamp_pipeline.store.base import StoreBase
from safetyamp_pipeline.store.engine import upsert


class Leases(StoreBase):
    def lease_try(self, name: str, holder: str, ttl: timedelta) -> str | None:
        """Take (or renew) the lease `name` for `holder` until now + `ttl`. Returns None when
        `holder` holds it now, else the current holder."""
        now = self._now()
        lt = self._t.leases
        with self._write() as conn:
            # Make sure the row exists without touching a held one (the update below decides).
            upsert(conn, lt, {"name": name}, {"holder": None, "expires_at": now}, update_values={"name": name})
            taken = conn.execute(
                update(lt)
                .where(
                    and_(
                        lt.c.name == name,
                        or_(lt.c.holder.is_(None), lt.c.holder == holder, lt.c.expires_at <= now),
                    )
                )
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
            if taken:
                return None
            current = conn.execute(select(lt.c.holder).where(lt.c.name == name)).scalar()
            return str(current)

    def lease_take_over(self, name: str, holder: str, dead_holder: str, ttl: timedelta) -> bool:
        """Take the lease from `dead_holder` (known to be gone) if it still holds it."""
        lt = self._t.leases
        with self._write() as conn:
            return bool(
                conn.execute(
                    update(lt)
                    .where(and_(lt.c.name == name, lt.c.holder == dead_holder))
                    .values(holder=holder, expires_at=self._now() + ttl)
                ).rowcount
            )

    def lease_release(self, name: str, holder: str) -> None:
        """Give the lease back; a no-op when `holder` no longer holds it (it expired and was taken)."""
        lt = self._t.leases
        with self._write() as conn:
            conn.execute(
                update(lt).where(and_(lt.c.name == name, lt.c.holder == holder)).values(holder=None)
            )

    def lease_holder(self, name: str) -> str | None:
        """The live holder of `name`, or None when it is free or expired."""
        lt = self._t.leases
        with self._read() as conn:
            row = conn.execute(select(lt.c.holder, lt.c.expires_at).where(lt.c.name == name)).first()
        if row is None or row.holder is None or row.expires_at <= self._now():
            return None
        return str(row.holder)
