"""Helpers for end-to-end tests that assert what a run's own asset checks said."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


def check_record(instance: dg.DagsterInstance, asset: list[str], check: str, run_id: str) -> Any:
    """The evaluation of ``check`` on ``asset`` in run ``run_id`` (fails the test when it did not run)."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
    mine = [r for r in records if r.run_id == run_id]
    assert mine, f"check {check} on {'/'.join(asset)} was not evaluated in run {run_id}"
    return mine[0]


def check_failed(instance: dg.DagsterInstance, asset: list[str], check: str, run_id: str) -> dict[str, Any]:
    """Assert ``check`` reported an explicit failure (not a crash) in the run; returns its metadata."""
    record = check_record(instance, asset, check, run_id)
    assert record.status == AssetCheckExecutionRecordStatus.FAILED, record.status
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed is False
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def check_passed(instance: dg.DagsterInstance, asset: list[str], check: str, run_id: str) -> dict[str, Any]:
    record = check_record(instance, asset, check, run_id)
    assert record.status == AssetCheckExecutionRecordStatus.SUCCEEDED, record.status
    evaluation = record.event.dagster_event.event_specific_data
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
