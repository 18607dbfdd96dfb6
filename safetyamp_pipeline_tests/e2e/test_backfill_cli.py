"""End-to-end (issue 16.3): a backfill of payroll weeks launched the way an operator launches one,
``dagster asset materialize --partition-range`` in its own process, on the sandbox. It is one run
(the asset's single-run backfill policy) and stores exactly Vista's payroll rows of each week."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from safetyamp_pipeline.sync.calendar import PAYROLL_WEEKS, week_bounds
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

ASSET = dg.AssetKey(["viewpoint", "job_assignments"])
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    sandbox, sandbox_run = start_run(tmp_path_factory.mktemp("backfill"))
    try:
        yield sandbox_run
    finally:
        sandbox_run.instance.dispose()
        sandbox.stop()


def _hours(rows: list[tuple]) -> dict[tuple[int, str, str], float]:
    """Hours per (employee, job, payroll end date), the way the source stores them (summed)."""
    out: Counter = Counter()
    for employee, job, end, hours in rows:
        out[(int(employee), str(job).strip(), str(end)[:10])] += float(hours)
    return {k: round(v, 2) for k, v in out.items()}


def _vista_rows(run: SandboxRun, week: str) -> dict[tuple[int, str, str], float]:
    start, end = week_bounds(week)
    with run.vista() as db:
        rows = db.execute(
            "SELECT Employee, Job, PREndDate, Hrs FROM bPRJC WHERE PRCo = 1 AND date(PREndDate) BETWEEN ? AND ?",
            (start.isoformat(), end.isoformat()),
        ).fetchall()
    return _hours(rows)


def _stored_rows(run: SandboxRun, week: str) -> dict[tuple[int, str, str], float]:
    rows = run.store.load_asset_value("viewpoint/job_assignments", partition=week)
    assert len(rows) == len({(r["Employee"], r["JCCo"], r["Job"], r["PREndDate"]) for r in rows})
    return _hours([(r["Employee"], r["Job"], r["PREndDate"], r["Hrs"]) for r in rows])


def test_a_cli_backfill_of_eight_weeks_is_one_run_that_stores_each_weeks_rows(run: SandboxRun) -> None:
    weeks = PAYROLL_WEEKS.get_partition_keys()[-10:-2]
    assert run.store.asset_partitions("viewpoint/job_assignments") == []
    env = {**os.environ, **run.env, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "safetyamp_pipeline.definitions",
         "--select", "viewpoint/job_assignments", "--partition-range", f"{weeks[0]}...{weeks[-1]}"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    runs = run.instance.get_run_records()
    assert len(runs) == 1 and runs[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert set(weeks) <= run.instance.get_materialized_partitions(ASSET)
    assert run.store.asset_partitions("viewpoint/job_assignments") == weeks
    with_rows = 0
    for week in weeks:
        expected = _vista_rows(run, week)
        assert _stored_rows(run, week) == expected, week
        with_rows += bool(expected)
    assert with_rows >= 4  # the data set has payroll in most of these weeks
