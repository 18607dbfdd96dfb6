"""One measured run checked against its scenario's design (benchmarks.design): the result row."""

from __future__ import annotations

from typing import Any

from benchmarks.churn import Churn
from benchmarks.design import Design, compare, designed_load, full_read_requests
from benchmarks.measure import RunMeasure, measured_sync, server_diff
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun


def ratio(requests: int, minimum: int) -> float | None:
    if minimum == 0:
        return 1.0 if requests == 0 else None
    return round(requests / minimum, 3)


def vista_path(run: SandboxRun) -> str:
    return run.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///")


def _result(name: str, measure: RunMeasure, design: Design, checked: dict[str, Any], **extra: Any) -> dict[str, Any]:
    if not measure.success:
        raise RuntimeError(f"scenario {name}: the sync failed: {measure.failure}")
    return {
        "scenario": name,
        **measure.as_dict(),
        "minimum_requests": design.requests,
        "minimum_writes": design.writes,
        "minimum_reads": design.reads,
        "ratio": ratio(measure.safetyamp_total, design.requests),
        **checked,
        **extra,
    }


def initial_result(run: SandboxRun, name: str) -> dict[str, Any]:
    """A first load: a full read of the tenant as it is, then every record the design calls for."""
    before = run.state()
    measure = measured_sync(run)
    design = designed_load(run.env, before)
    design.reads = full_read_requests(before)
    diff = server_diff(before, run.state())
    return _result(
        name, measure, design, compare(design.keys, diff),
        minimum_writes_by_entity=design.writes_by_entity, server_created=diff.created, server_changed=diff.changed,
    )


def no_drift_result(run: SandboxRun, name: str, job: str = "safetyamp_sync", *, read_needed: bool) -> dict[str, Any]:
    """Nothing changed since the last sync: no write is needed; a reconcile also needs a full read."""
    before = run.state()
    measure = measured_sync(run, job)
    design = Design(reads=full_read_requests(before) if read_needed else 0)
    diff = server_diff(before, run.state())
    return _result(name, measure, design, compare(set(), diff), server_records_changed=diff.writes)


def churn_result(run: SandboxRun, name: str, churn: Churn) -> dict[str, Any]:
    """A sync after ``churn``: exactly one write per changed Vista record, on that record."""
    before = run.state()
    measure = measured_sync(run)
    keys = {f"users:{k}" for k in churn.user_keys} | {f"sites:{j.strip()}" for j in churn.new_jobs}
    design = Design(writes_by_entity={"churn": churn.expected_writes}, keys=keys)
    diff = server_diff(before, run.state())
    return _result(
        name, measure, design, compare(keys, diff), churn=churn.as_dict(), server_records_changed=diff.writes
    )
