"""The sync store (PostgreSQL) goes away in the middle of the sinks: the run fails, no write is sent
without an intent recorded first, at most the one write in flight lacks its ledger entry (it keeps
an open intent), and the next run, with the store back, completes the ledger and the sync."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster._serdes import serialize_value

from safetyamp_pipeline.sync.apply import BATCH_SIZE
from safetyamp_pipeline_tests.reliability.helpers import report, start, stop, unrecorded_writes
from safetyamp_pipeline_tests.store.conftest import PG_URL, require_pg

pytestmark = pytest.mark.postgres


def _admin() -> sa.Engine:
    return sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def store_database() -> Iterator[str]:
    require_pg()
    name = f"rel_store_{uuid.uuid4().hex[:10]}"
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _set_available(name: str, available: bool) -> None:
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if available else "false"}'))
        if not available:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
    engine.dispose()


def test_store_lost_mid_run_leaves_no_unrecorded_write(tmp_path: Path, store_database: str) -> None:
    run = start(tmp_path, employees=80, seed=53)
    url = sa.make_url(PG_URL).set(database=store_database).render_as_string(hide_password=False)
    run.env["SAFETYAMP_STORE_URL"] = url
    try:
        before = run.state()
        threshold = 70  # inside the sinks: clusters and titles are done, sites are being created
        cut: dict[str, int] = {}

        def cut_store() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                total = run.sandbox.safetyamp.request_counts()["total"]
                if total >= threshold:
                    _set_available(store_database, False)
                    cut["at_request"] = total
                    return
                time.sleep(0.002)

        watcher = threading.Thread(target=cut_store, daemon=True)
        watcher.start()
        failed = run.sync()
        watcher.join(130)
        assert cut, "the store was never cut: the run made too few SafetyAmp requests"
        assert not failed.success
        assert "The sync store became unavailable during safetyamp/" in (failed.failure or ""), failed.failure
        # The SQL error (whose text quotes the rows being written, person data included) is not
        # in the Dagster events; the failure says what happened instead.
        events = [serialize_value(e) for e in run.instance.all_logs(failed.run_id)]
        assert not [e for e in events if "[parameters:" in e or "[SQL:" in e]
        writes_after_cut = run.sandbox.safetyamp.request_counts()["total"] - cut["at_request"]

        _set_available(store_database, True)
        during = run.state()
        written, missing = unrecorded_writes(run.store, before, during)
        open_intents = {(i["entity"], str(i["key"]).strip().casefold()) for i in run.store.intents_open()}
        # Nothing was written without an intent; only the writes of the batch in flight (their answers
        # wait in memory for one commit, sync/apply.py BATCH_SIZE) lack their ledger entry.
        assert len(missing) <= BATCH_SIZE, missing
        assert set(missing) <= open_intents, (missing, open_intents)

        recovery = run.sync()
        assert recovery.success, recovery.failure
        after = run.state()
        total_written, still_missing = unrecorded_writes(run.store, before, after)
        assert not still_missing, still_missing
        assert not run.store.intents_open()
        report("store_outage", {"cut_at_request": cut["at_request"], "requests_after_cut": writes_after_cut,
                                "writes_before_cut": written, "unrecorded_at_failure": len(missing),
                                "writes_checked_after_recovery": total_written, "failure": (failed.failure or "")[:400]})
    finally:
        stop(run)
