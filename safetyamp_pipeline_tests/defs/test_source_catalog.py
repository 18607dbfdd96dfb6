"""Issue 20.4: the source assets tell the Dagster catalog their columns and row counts
(`dagster/column_schema`, `dagster/row_count`), read through the real sync job on the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest

from safetyamp_pipeline.clients.vista import EMPLOYEE_COLUMNS, JOB_COLUMNS
from safetyamp_pipeline.defs.sources.entra import ENTRA_FIELDS
from safetyamp_pipeline.defs.sources.samsara import VEHICLE_COLUMNS
from safetyamp_pipeline.defs.sources.schema import inferred_schema
from safetyamp_pipeline.sync.calendar import current_week_key
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

SOURCES = (
    ("viewpoint", "departments"),
    ("viewpoint", "jobs"),
    ("viewpoint", "employees"),
    ("viewpoint", "job_assignments"),
    ("entra", "users"),
    ("samsara", "vehicles"),
)


@pytest.fixture(scope="module")
def sources_read(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxRun, dict[str, dict[str, Any]], str]]:
    """One run of `safetyamp_sync` limited to the source assets; metadata of each source's latest
    materialization (the current week's for job_assignments)."""
    sandbox, run = start_run(tmp_path_factory.mktemp("catalog"), employees=40)
    try:
        outcome = run.sync(selection=[dg.AssetKey(list(key)) for key in SOURCES])
        assert outcome.success, outcome.failure
        metadata: dict[str, dict[str, Any]] = {}
        for key in SOURCES:
            records = run.instance.fetch_materializations(dg.AssetKey(list(key)), limit=100).records
            own = [r for r in records if r.run_id == outcome.run_id]
            if key[1] == "job_assignments":
                own = [r for r in own if r.partition_key == current_week_key()]
            assert own, key
            materialization = own[0].asset_materialization
            assert materialization is not None
            metadata["/".join(key)] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        yield run, metadata, outcome.run_id
    finally:
        run.instance.dispose()
        sandbox.stop()


def _columns(metadata: dict[str, Any]) -> dict[str, str]:
    schema = metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    return {column.name: column.type for column in schema.columns}


def _count(run: SandboxRun, sql: str) -> int:
    with run.vista() as conn:
        return conn.execute(sql).fetchone()[0]


def test_vista_sources_report_their_sql_columns_and_row_counts(sources_read) -> None:
    run, metadata, _ = sources_read
    departments = metadata["viewpoint/departments"]
    assert _columns(departments) == {
        "PRCo": "TINYINT", "PRDept": "VARCHAR(10)", "Description": "VARCHAR(60)", "udRegion": "VARCHAR(30)"
    }
    assert departments["dagster/row_count"] == _count(run, "SELECT COUNT(*) FROM bPRDP WHERE PRCo = 1") > 0

    jobs = metadata["viewpoint/jobs"]
    assert list(_columns(jobs)) == [*JOB_COLUMNS, "Department"]
    assert jobs["dagster/row_count"] == _count(run, "SELECT COUNT(*) FROM bJCJM WHERE JCCo = 1 AND JobStatus = 1") > 0

    employees = metadata["viewpoint/employees"]
    columns = _columns(employees)
    assert list(columns) == list(EMPLOYEE_COLUMNS)
    assert columns["Employee"] == "INTEGER" and columns["HireDate"] == "SMALLDATETIME" and columns["Email"] == "VARCHAR(60)"
    # Default settings read every hired employee, terminated ones included.
    assert employees["dagster/row_count"] == _count(
        run, "SELECT COUNT(*) FROM bPREH WHERE PRCo = 1 AND HireDate IS NOT NULL"
    ) > 0

    payroll = metadata["viewpoint/job_assignments"]
    assert _columns(payroll) == {
        "PRCo": "TINYINT", "Employee": "INTEGER", "JCCo": "TINYINT", "Job": "VARCHAR(10)",
        "PREndDate": "SMALLDATETIME", "Hrs": "NUMERIC(10, 2)",
    }
    week_rows = run.store.load_asset_partitions("viewpoint/job_assignments", [current_week_key()])
    assert payroll["dagster/row_count"] == len(week_rows)


def test_entra_and_samsara_report_inferred_columns_and_row_counts(sources_read) -> None:
    run, metadata, _ = sources_read
    users = metadata["entra/users"]
    assert _columns(users) == {
        "id": "string", "employeeId": "string", "mail": "string", "userPrincipalName": "string", "accountEnabled": "bool"
    }
    assert users["dagster/row_count"] == len(run.state("graph")["users"]) > 0
    assert list(_columns(users)) == list(ENTRA_FIELDS)

    vehicles = metadata["samsara/vehicles"]
    columns = _columns(vehicles)
    assert list(columns) == list(VEHICLE_COLUMNS)
    assert columns["serial"] == "string" and columns["id"] == "string"
    assert vehicles["dagster/row_count"] == len(run.state("samsara")["vehicles"]) > 0


def test_inferred_types_skip_nulls_and_name_what_cannot_be_typed() -> None:
    rows = [
        {"n": 1, "flag": True, "when": dt.datetime(2025, 1, 1), "hrs": Decimal("8.5"), "note": None, "both": 1},
        {"n": None, "flag": None, "when": None, "hrs": None, "note": None, "both": "one"},
        {"n": 3},  # keys missing in a row count as nulls
    ]
    schema = inferred_schema(rows, ["n", "flag", "when", "hrs", "note", "both", "absent"])
    assert {c.name: c.type for c in schema.columns} == {
        "n": "int", "flag": "bool", "when": "datetime", "hrs": "decimal", "note": "null", "both": "mixed", "absent": "null"
    }
    assert [c.type for c in inferred_schema([], ["a"]).columns] == ["null"]


def test_the_payroll_look_back_weeks_carry_the_schema_too(sources_read) -> None:
    run, _, run_id = sources_read
    key = dg.AssetKey(["viewpoint", "job_assignments"])
    records = run.instance.fetch_materializations(key, limit=100).records
    others = [r for r in records if r.run_id == run_id and r.partition_key != current_week_key()]
    assert others, "a first sync fills the look-back weeks"
    for record in others:
        materialization = record.asset_materialization
        assert materialization is not None
        assert "dagster/column_schema" in materialization.metadata
        stored = run.store.load_asset_partitions("viewpoint/job_assignments", [record.partition_key])
        assert getattr(materialization.metadata["dagster/row_count"], "value", None) == len(stored)


def test_a_range_run_reports_the_schema_but_no_per_week_row_count(sources_read) -> None:
    """One result covers every week of a backfill range: a row count there would be shown as each
    week's, so the range run reports its total as `range_rows` instead."""
    from safetyamp_pipeline.definitions import defs
    from safetyamp_pipeline.sync.calendar import PAYROLL_WEEKS
    from safetyamp_pipeline.sync.headless import environment

    run, _, _ = sources_read
    key = dg.AssetKey(["viewpoint", "job_assignments"])
    weeks = PAYROLL_WEEKS.get_partition_keys()[-6:-3]
    with environment(run.env):
        job = defs().resolve_job_def("safetyamp_sync")
        result = job.execute_in_process(
            instance=run.instance,
            tags={"dagster/asset_partition_range_start": weeks[0], "dagster/asset_partition_range_end": weeks[-1]},
            asset_selection=[key],
        )
    assert result.success
    events = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    assert sorted(m.partition for m in events if m.partition) == weeks
    stored = sum(len(run.store.load_asset_partitions("viewpoint/job_assignments", [w])) for w in weeks)
    for materialization in events:
        assert "dagster/column_schema" in materialization.metadata
        assert "dagster/row_count" not in materialization.metadata
        assert getattr(materialization.metadata["range_rows"], "value", None) == stored
