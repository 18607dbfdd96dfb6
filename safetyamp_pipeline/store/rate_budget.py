"""One SafetyAmp rate budget per API token, shared by every process through the sync store.

`SharedRateBudget` has the semantics of `clients.rate_limit.TokenBucket` (`rate` tokens; a spent
token comes back `per_seconds` after it was spent, so no window of `per_seconds` holds more than
`rate` requests), but its tokens are rows of the sync store, so a sync, a reconcile and a manual
run in separate pods spend one budget together.

Layout: `sync_rate_budget` holds one row per budget (`budget_key` = SHA-256 of the token, never the
token) with the ring position `next_slot`; `sync_rate_budget_slots` holds up to `rate` slots with the time each
was last spent. Tokens are handed out in ring order, so the slot under the cursor is the oldest
grant: `acquire` reads it in the same statement as the cursor, and when it is older than
`per_seconds` it takes it by moving the cursor with a compare-and-set
(`UPDATE ... WHERE next_slot = :seen`) and restamping the slot, all in one write transaction
(`BEGIN IMMEDIATE` on SQLite). A concurrent process that read the same cursor updates no row
and retries, so a slot is never granted twice. When the slot under the cursor is busy, the busy
slots are counted exactly (a changed limit, or a late restamp, can leave another slot free). Slots
are created on first use, so a large `rate` costs rows only for the requests actually made. After
a limit is lowered, grants of the old limit in slots beyond the new `rate` are not counted: one
window of transition can exceed the new limit.

Time is the database's clock (`clock_timestamp()` on PostgreSQL, `julianday('now')` on SQLite),
so pods with skewed clocks still agree.

Latency: the server counts a request when it arrives, after `acquire`. A slot is stamped
`margin` seconds ahead of the grant (default 2 % of the window, at most 1 s); an answer that comes
back later than that restamps the slot with the answer time (`mark_answered`), so a slot is only
reused `per_seconds` after the server can have seen the request. Fast answers cost no extra write.
A request that takes longer than `margin + per_seconds` can have its slot reused before the
restamp, as with the in-process bucket.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql.elements import TextClause

from safetyamp_pipeline.store.engine import WRITE_OPTION, make_store_engine
from safetyamp_pipeline.store.errors import StoreUnavailable
from safetyamp_pipeline.store.urls import default_store_url, mask_url

BUDGET_TABLE = "sync_rate_budget"
SLOTS_TABLE = "sync_rate_budget_slots"
_KEY_LABEL = b"safetyamp-pipeline rate budget\0"


def budget_key(token: str) -> str:
    """The row key of a token's budget: a SHA-256 hex digest (the token itself is never stored)."""
    return hashlib.sha256(_KEY_LABEL + token.encode("utf-8")).hexdigest()


def build_budget_tables(schema: str | None = None) -> tuple[MetaData, Table, Table]:
    md = MetaData(schema=schema)
    budgets = Table(
        BUDGET_TABLE,
        md,
        Column("budget_key", String(64), primary_key=True),
        Column("next_slot", Integer, nullable=False),
    )
    slots = Table(
        SLOTS_TABLE,
        md,
        Column("budget_key", String(64), primary_key=True),
        Column("slot", Integer, primary_key=True, autoincrement=False),
        Column("spent_at", Double, nullable=False),
        Column("nonce", String(32), nullable=False),
    )
    return md, budgets, slots


@dataclass
class _Grant:
    slot: int
    nonce: str
    stamp: float  # database time the slot is stamped with
    granted_at: float  # database time of the grant
    local_start: float  # time.monotonic() just before the grant's transaction began


class SharedRateBudget:
    """`rate` requests per `per_seconds` for `token`, shared by every process using `url`.

    `clock`/`sleep` replace the database clock and `time.sleep` in tests.
    """

    def __init__(
        self,
        url: str,
        token: str,
        rate: int,
        per_seconds: float,
        *,
        schema: str | None = None,
        margin: float | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1:
            raise ValueError(f"rate must be at least 1, got {rate}")
        if per_seconds <= 0:
            raise ValueError(f"per_seconds must be positive, got {per_seconds}")
        if not token:
            raise ValueError("a rate budget needs the API token it limits")
        self.rate = int(rate)
        self.per_seconds = float(per_seconds)
        self.margin = min(1.0, 0.02 * self.per_seconds) if margin is None else float(margin)
        self.key = budget_key(token)
        self.url = url
        self.schema = schema or None
        self.waited_total = 0.0
        self._clock = clock
        self._sleep = sleep
        self._local = threading.local()
        self._engine = make_store_engine(url)
        # An in-memory SQLite store is one shared connection: threads must take turns on it.
        self._serial: AbstractContextManager[object] = (
            threading.RLock() if isinstance(self._engine.pool, StaticPool) else nullcontext()
        )
        if self.schema and self._engine.dialect.name == "sqlite":
            raise ValueError("a store schema is only supported on PostgreSQL, not on SQLite")
        self._md, self._budgets, self._slots = build_budget_tables(self.schema)
        self._sql = _Statements.build(self._engine.dialect, self._budgets, self._slots, self._now_sql())
        self._create_tables()

    def __repr__(self) -> str:
        return f"SharedRateBudget({mask_url(self.url)!r}, rate={self.rate}, per_seconds={self.per_seconds:g})"

    def close(self) -> None:
        self._engine.dispose()

    # -- the RateLimiter interface ------------------------------------------------------------------

    def acquire(self) -> float:
        """Take a token, sleeping until one is back if none is free. Returns seconds waited."""
        waited = 0.0
        while True:
            local_start = time.monotonic()
            outcome = self._try_take(local_start)
            if isinstance(outcome, _Grant):
                self._local.grant = outcome
                self._local.granted_at = outcome.granted_at
                self.waited_total += waited
                return waited
            if outcome > 0:
                self._sleep(outcome)
                waited += outcome

    def mark_answered(self) -> None:
        """Restamp this thread's last slot with the answer time when it is later than its stamp."""
        grant: _Grant | None = getattr(self._local, "grant", None)
        self._local.grant = None
        if grant is None:
            return
        answered = grant.granted_at + (time.monotonic() - grant.local_start)
        if self._clock is not None:
            answered = max(answered, self._clock())
        if answered <= grant.stamp:
            return
        try:
            with self._write() as conn:
                conn.execute(
                    self._sql.restamp,
                    {"key": self.key, "slot": grant.slot, "nonce": grant.nonce, "stamp": answered},
                )
        except DBAPIError as exc:
            raise self._failed(exc) from None

    @property
    def last_granted_at(self) -> float | None:
        """Database time (epoch seconds) of this thread's last grant."""
        return getattr(self._local, "granted_at", None)

    @property
    def available(self) -> int:
        """Tokens free right now (all processes together)."""
        s = self._slots.c
        with self._connect() as conn, conn.begin():
            now = self._now(conn)
            busy = conn.execute(
                select(func.count())
                .select_from(self._slots)
                .where(s.budget_key == self.key, s.slot < self.rate, s.spent_at > now - self.per_seconds)
            ).scalar_one()
        return self.rate - int(busy)

    # -- internals -----------------------------------------------------------------------------------

    def _try_take(self, local_start: float) -> _Grant | float:
        """A grant, or the seconds to wait before trying again (0: lost a race, retry now)."""
        sql, key, rate = self._sql, self.key, self.rate
        try:
            with self._write() as conn:
                row = conn.execute(sql.read, {"key": key, "rate": rate}).one_or_none()
                if row is None:
                    conn.execute(sql.new_budget, {"key": key})
                    return 0.0
                cursor, spent_at, db_now = row
                now = self._clock() if self._clock is not None else self._db_time(conn, db_now)
                horizon = now - self.per_seconds
                slot = cursor % rate
                ring_free = spent_at is None or spent_at <= horizon
                # Compare-and-set on the ring position: it also serializes grants per budget on
                # PostgreSQL (the row stays locked until commit), so the count below is exact.
                moved = conn.execute(
                    sql.move, {"key": key, "seen": cursor, "next": (slot + 1) % rate if ring_free else cursor}
                )
                if moved.rowcount != 1:
                    return 0.0  # another process granted first (PostgreSQL); the commit is empty
                if not ring_free:
                    # The ring's oldest slot is busy. With one limit all the time that means the
                    # budget is spent; after a change of limit (or a late restamp) another slot may
                    # be free: count exactly.
                    busy, earliest = conn.execute(sql.busy, {"key": key, "rate": rate, "horizon": horizon}).one()
                    if busy >= rate:
                        return float(earliest) - horizon
                    free = conn.execute(sql.free_slot, {"key": key, "rate": rate, "horizon": horizon}).one_or_none()
                    if free is None:  # slots are created in order: the next index is the count
                        slot, spent_at = int(conn.execute(sql.slots, {"key": key, "rate": rate}).scalar_one()), None
                    else:
                        slot, spent_at = free
                grant = _Grant(slot, uuid.uuid4().hex, now + self.margin, now, local_start)
                values = {"key": key, "slot": slot, "stamp": grant.stamp, "nonce": grant.nonce}
                conn.execute(sql.new_slot if spent_at is None else sql.stamp, values)
                return grant
        except IntegrityError:
            return 0.0  # two processes created the same row at once; the loser retries
        except DBAPIError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: DBAPIError) -> StoreUnavailable:
        # The driver's text quotes the statement; the class name is enough to act on.
        return StoreUnavailable(
            f"the SafetyAmp rate budget in the sync store at {mask_url(self.url)} failed: {type(exc.orig).__name__}"
        )

    def _now_sql(self) -> str:
        backend = self._engine.dialect.name
        if backend == "postgresql":
            return "extract(epoch from clock_timestamp())"
        if backend == "sqlite":
            return "(julianday('now') - 2440587.5) * 86400.0"
        return "0"  # other backends: the local clock (see _db_time)

    def _now(self, conn: Connection) -> float:
        if self._clock is not None:
            return self._clock()
        return self._db_time(conn, conn.execute(text(f"SELECT {self._now_sql()}")).scalar_one())

    @staticmethod
    def _db_time(conn: Connection, value: object) -> float:
        if conn.dialect.name in ("postgresql", "sqlite"):
            return float(value)  # type: ignore[arg-type]
        return time.time()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._serial:
            try:
                conn = self._engine.connect()
            except DBAPIError as exc:
                raise StoreUnavailable(
                    f"sync store at {mask_url(self.url)} is unreachable for the rate budget: {type(exc.orig).__name__}"
                ) from None
            with conn:
                yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite): committed on success, else rolled back."""
        with self._connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def _create_tables(self) -> None:
        # Two processes starting at once may race to create the tables; the loser retries.
        for attempt in range(5):
            try:
                with self._write() as conn:
                    if self.schema and not inspect(conn).has_schema(self.schema):
                        conn.execute(CreateSchema(self.schema, if_not_exists=True))
                    self._md.create_all(conn, checkfirst=True)
                return
            except (IntegrityError, ProgrammingError, OperationalError) as exc:
                if attempt == 4:
                    raise self._failed(exc) from None
                time.sleep(0.05 * (attempt + 1))


@dataclass(frozen=True)
class _Statements:
    """The hot statements as plain SQL text: built once, so a grant costs no statement compilation."""

    read: TextClause
    new_budget: TextClause
    move: TextClause
    stamp: TextClause
    new_slot: TextClause
    busy: TextClause
    free_slot: TextClause
    slots: TextClause
    restamp: TextClause

    @classmethod
    def build(cls, dialect: Dialect, budgets: Table, slots: Table, now_sql: str) -> _Statements:
        name = dialect.identifier_preparer.format_table
        b, s = name(budgets), name(slots)
        return cls(
            read=text(
                f"SELECT b.next_slot, s.spent_at, {now_sql} AS now FROM {b} b LEFT JOIN {s} s "
                "ON s.budget_key = b.budget_key AND s.slot = b.next_slot % :rate WHERE b.budget_key = :key"
            ),
            new_budget=text(f"INSERT INTO {b} (budget_key, next_slot) VALUES (:key, 0)"),
            move=text(f"UPDATE {b} SET next_slot = :next WHERE budget_key = :key AND next_slot = :seen"),
            stamp=text(f"UPDATE {s} SET spent_at = :stamp, nonce = :nonce WHERE budget_key = :key AND slot = :slot"),
            new_slot=text(f"INSERT INTO {s} (budget_key, slot, spent_at, nonce) VALUES (:key, :slot, :stamp, :nonce)"),
            busy=text(
                f"SELECT COUNT(*), MIN(spent_at) FROM {s} "
                "WHERE budget_key = :key AND slot < :rate AND spent_at > :horizon"
            ),
            free_slot=text(
                f"SELECT slot, spent_at FROM {s} WHERE budget_key = :key AND slot < :rate AND spent_at <= :horizon "
                "ORDER BY slot LIMIT 1"
            ),
            slots=text(f"SELECT COUNT(*) FROM {s} WHERE budget_key = :key AND slot < :rate"),
            # Only the grant's own use of the slot (nonce), and never backwards.
            restamp=text(
                f"UPDATE {s} SET spent_at = :stamp "
                "WHERE budget_key = :key AND slot = :slot AND nonce = :nonce AND spent_at < :stamp"
            ),
        )


def shared_budget_from_env(
    token: str, rate: int, per_seconds: float, env: Mapping[str, str] = os.environ
) -> SharedRateBudget:
    """The budget on the sync store the assets use (`SAFETYAMP_STORE_URL`, else SQLite under
    `DAGSTER_HOME`; `SAFETYAMP_STORE_SCHEMA` on PostgreSQL)."""
    return SharedRateBudget(
        default_store_url(env), token, rate, per_seconds, schema=(env.get("SAFETYAMP_STORE_SCHEMA") or "").strip() or None
    )
