"""Connection handling, schema creation and versioning shared by the store's parts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema

from safetyamp_pipeline.store.engine import WRITE_OPTION, make_store_engine
from safetyamp_pipeline.store.errors import StoreSchemaTooNew, StoreUnavailable
from safetyamp_pipeline.store.tables import SCHEMA_VERSION, StoreTables, build_tables
from safetyamp_pipeline.store.urls import mask_url

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """Owns the engine and the tables; the parts (asset values, mirror, ...) are mixins on it."""

    def __init__(self, url: str, schema: str | None = None, *, clock: Clock = utc_now) -> None:
        self.url = url
        self.schema = schema or None
        self._clock = clock
        self._engine: Engine = make_store_engine(url)
        # An in-memory SQLite store is one shared connection: threads must take turns on it.
        self._serial: AbstractContextManager[Any] = (
            threading.RLock() if isinstance(self._engine.pool, StaticPool) else nullcontext()
        )
        if self.schema and self._engine.dialect.name == "sqlite":
            raise ValueError("a store schema is only supported on PostgreSQL, not on SQLite")
        self._t: StoreTables = build_tables(self.schema)
        self._batch = threading.local()  # the connection of this thread's open `transaction()`
        self._ensure_schema()

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        schema = f", schema={self.schema!r}" if self.schema else ""
        return f"{type(self).__name__}({self.masked_url!r}{schema})"

    def _scrub(self, text: str) -> str:
        """Remove the URL's password from a driver message (drivers rarely echo it, but never trust)."""
        password = self._engine.url.password
        return text.replace(password, "***") if password else text

    def _now(self) -> datetime:
        return self._clock()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._serial:
            try:
                conn = self._engine.connect()
            except DBAPIError as exc:
                raise StoreUnavailable(
                    f"sync store at {self.masked_url} is unreachable: {type(exc.orig).__name__}: "
                    f"{self._scrub(_first_line(exc.orig))}"
                ) from None
            with conn:
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        joined = getattr(self._batch, "conn", None)
        if joined is not None:
            yield joined
            return
        with self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any exception. Inside
        `transaction()` it joins that transaction instead."""
        joined = getattr(self._batch, "conn", None)
        if joined is not None:
            yield joined
            return
        with self._connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run several store writes (of this thread) as one transaction: one commit for all of
        them, or none of them when anything fails. Nested calls join the outer one."""
        if getattr(self._batch, "conn", None) is not None:
            yield
            return
        with self._write() as conn:
            self._batch.conn = conn
            try:
                yield
            finally:
                self._batch.conn = None

    def _ensure_schema(self) -> None:
        # Two processes starting at once may race to create the tables; the loser retries and
        # then finds them.
        for attempt in range(5):
            try:
                self._create_tables()
                break
            except (IntegrityError, ProgrammingError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not _is_race(exc):
                    raise StoreUnavailable(
                        f"sync store at {self.masked_url} could not be initialized: "
                        f"{type(exc.orig).__name__}: {self._scrub(_first_line(exc.orig))}"
                    ) from None
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self._check_version()

    def _create_tables(self) -> None:
        with self._write() as conn:
            if self.schema and not inspect(conn).has_schema(self.schema):
                conn.execute(CreateSchema(self.schema, if_not_exists=True))
            self._t.metadata.create_all(conn)
            current = conn.execute(select(func.max(self._t.schema_version.c.version))).scalar()
            if current is None:
                conn.execute(
                    self._t.schema_version.insert().values(version=SCHEMA_VERSION, applied_at=self._now())
                )

    def _check_version(self) -> None:
        with self._read() as conn:
            current = conn.execute(select(func.max(self._t.schema_version.c.version))).scalar()
        if current is not None and current > SCHEMA_VERSION:
            raise StoreSchemaTooNew(
                f"sync store at {self.masked_url} has schema version {current}; this code "
                f"understands up to {SCHEMA_VERSION}. Upgrade the pipeline."
            )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip().splitlines()
    return text[0] if text else ""


def _is_race(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "already exists" in text or "locked" in text
