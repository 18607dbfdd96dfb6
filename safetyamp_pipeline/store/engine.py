"""Engine construction for the sync store, with the per-backend settings that make concurrent
writers safe.

SQLite: WAL journal (readers never block the writer), a 30 s busy timeout, and write transactions
opened with `BEGIN IMMEDIATE` so two processes queue for the write lock instead of failing with
"database is locked" when a read-then-write transaction tries to upgrade. PostgreSQL: ordinary
transactions; upserts use `ON CONFLICT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event, update
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from safetyamp_pipeline.store.errors import StoreUnavailable
from safetyamp_pipeline.store.urls import mask_url

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
WRITE_OPTION = "safetyamp_store_write"


def make_store_engine(url: str | URL) -> Engine:
    """`hide_parameters`: a failing statement's error text names the statement but never its
    values (mirror and ledger rows hold person data)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except Exception as exc:  # ArgumentError, ValueError: the text itself may hold a password
        raise StoreUnavailable(f"sync store URL {mask_url(str(url))} is not a valid SQLAlchemy URL") from exc


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, "hide_parameters": True}
    if in_memory:
        # One shared connection, or every checkout would see a different empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        database = url.database or ""
        if not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"sync store at {mask_url(url)} could not be created: {exc.strerror}"
                ) from None
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so `begin` below decides the BEGIN kind.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def upsert(
    conn: Connection,
    table: Table,
    keys: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    update_values: Mapping[str, Any] | None = None,
) -> None:
    """Insert `keys | values`, or on a key clash update the row with `update_values`
    (default: `values`). `update_values` may hold SQL expressions (e.g. `attempts + 1`)."""
    on_clash = dict(values if update_values is None else update_values)
    backend = conn.dialect.name
    if backend in ("sqlite", "postgresql"):
        if backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(table).values({**keys, **values})
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=on_clash)
        conn.execute(stmt)
        return
    # Other backends: update first, insert when nothing matched (callers hold a write transaction).
    where = [table.c[name] == value for name, value in keys.items()]
    result = conn.execute(update(table).where(*where).values(on_clash))
    if result.rowcount == 0:
        conn.execute(table.insert().values({**keys, **values}))


def upsert_many(conn: Connection, table: Table, key_names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """`upsert` for many rows of the same columns: one statement, executed once per row by the
    driver (executemany), a key clash overwriting the other columns."""
    if not rows:
        return
    backend = conn.dialect.name
    if backend not in ("sqlite", "postgresql"):
        for row in rows:
            upsert(conn, table, {k: row[k] for k in key_names}, {k: v for k, v in row.items() if k not in key_names})
        return
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(table)
    others = [name for name in rows[0] if name not in key_names]
    stmt = stmt.on_conflict_do_update(index_elements=list(key_names), set_={n: stmt.excluded[n] for n in others})
    for batch in chunked(rows, 2000):
        conn.execute(stmt, [dict(row) for row in batch])


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
