"""`safetyamp_sync` on the instance the Helm chart renders (PostgreSQL storage, pools, retries),
with the sync store in its own schema of the same PostgreSQL database; everything is then read
back from PostgreSQL by a second instance."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from safetyamp_pipeline.sync.headless import run_job
from safetyamp_pipeline_tests.e2e.conftest import start_run


def test_safetyamp_sync_runs_on_the_helm_rendered_instance(helm_instance: Any, postgres_database: str, tmp_path: Path) -> None:
    sandbox, run = start_run(tmp_path, employees=60)
    store_schema = f"safetyamp_sync_{secrets.token_hex(3)}"
    env = {**run.env, "SAFETYAMP_STORE_URL": postgres_database, "SAFETYAMP_STORE_SCHEMA": store_schema}
    try:
        outcome = run_job(env, "safetyamp_sync", instance=helm_instance)
        assert outcome.success, outcome.failure
        assert outcome.sinks["users"]["created"] > 0
    finally:
        run.instance.dispose()
        sandbox.stop()

    # A second instance on the same database sees the run, its events and the materializations.
    reader = dg.DagsterInstance.from_ref(helm_instance.get_ref())
    try:
        record = reader.get_run_record_by_id(outcome.run_id)
        assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert record.dagster_run.job_name == "safetyamp_sync"
        materialization = reader.get_latest_materialization_event(dg.AssetKey(["safetyamp", "users"]))
        assert materialization is not None and materialization.run_id == outcome.run_id
        metadata = materialization.asset_materialization.metadata
        assert metadata["created"].value == outcome.sinks["users"]["created"]
        logs = reader.all_logs(outcome.run_id)
        assert any(e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION" for e in logs)
    finally:
        reader.dispose()

    engine = sa.create_engine(postgres_database)
    with engine.connect() as connection:
        dagster_runs = connection.execute(sa.text("SELECT count(*) FROM runs WHERE run_id = :r"), {"r": outcome.run_id}).scalar()
        store_tables = connection.execute(
            sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"), {"s": store_schema}
        ).scalar()
        ledger_rows = connection.execute(sa.text(f'SELECT count(*) FROM "{store_schema}".sync_ledger')).scalar()
    engine.dispose()
    assert dagster_runs == 1
    assert store_tables >= 5
    assert ledger_rows >= outcome.total("created")
