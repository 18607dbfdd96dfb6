"""Store fixtures: every store test runs on SQLite (tmp_path) and on the real PostgreSQL.

PostgreSQL tests each get a fresh schema, dropped afterwards. When no server answers at
SAFETYAMP_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) they are skipped with the
reason, or FAIL when SAFETYAMP_REQUIRE_PG=1 (set by .ci/run), so CI never goes green with the
PostgreSQL half skipped. Every test that needs the server goes through `require_pg()`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest
import sqlalchemy as sa

from safetyamp_pipeline.store import SyncStore

PG_URL = os.environ.get("SAFETYAMP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG_ENV = "SAFETYAMP_REQUIRE_PG"


def pg_required() -> bool:
    return os.environ.get(REQUIRE_PG_ENV, "").strip().lower() in ("1", "true", "yes")


def require_pg() -> None:
    """Skip the calling test (with the reason) when PostgreSQL is unreachable; fail it instead
    when SAFETYAMP_REQUIRE_PG=1."""
    reason = pg_unreachable_reason()
    if reason is None:
        return
    if pg_required():
        pytest.fail(f"{reason} ({REQUIRE_PG_ENV}=1: PostgreSQL is required)", pytrace=False)
    pytest.skip(reason)


@cache
def pg_unreachable_reason() -> str | None:
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test against"
        return f"PostgreSQL not reachable at {sa.make_url(PG_URL).render_as_string()}: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


@dataclass(frozen=True)
class StoreTarget:
    """Where a test's store lives; picklable so child processes can open their own store."""

    backend: str
    url: str
    schema: str | None

    def open(self) -> SyncStore:
        return SyncStore(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path) -> Iterator[StoreTarget]:
    if request.param == "sqlite":
        yield StoreTarget("sqlite", f"sqlite:///{tmp_path / 'store.db'}", None)
        return
    yield from _pg_target()


@pytest.fixture
def pg_target() -> Iterator[StoreTarget]:
    yield from _pg_target()


def _pg_target() -> Iterator[StoreTarget]:
    require_pg()
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    yield StoreTarget("postgresql", PG_URL, schema)
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store(store_target: StoreTarget) -> Iterator[SyncStore]:
    s = store_target.open()
    yield s
    s.close()
