"""Issue 15.10 (second half): a sync store failure inside a source or desired asset fails the step
with a clear message and no chained SQL error (whose text quotes rows with person data)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from sqlalchemy.exc import OperationalError

from safetyamp_pipeline.defs.desired.assets import desired_site_clusters
from safetyamp_pipeline.defs.sources.viewpoint import viewpoint_departments
from safetyamp_pipeline.store import StoreUnavailable

PERSON = "jane.doe@example.com"


class _BrokenStore:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def save_asset_value(self, *args: Any, **kwargs: Any) -> int:
        raise self.exc

    def load_asset_value(self, *args: Any, **kwargs: Any) -> list[dict]:
        raise self.exc


class _StoreResource:
    def __init__(self, exc: Exception) -> None:
        self.store = _BrokenStore(exc)

    def get_store(self) -> _BrokenStore:
        return self.store


class _Vista:
    def get_client(self) -> Any:
        class Client:
            def departments(self) -> list[dict]:
                return [{"PRCo": 1, "PRDept": "10", "Description": "Ops", "udRegion": "N"}]

        return Client()


class _Settings:
    def settings(self) -> Any:
        from safetyamp_pipeline.core.settings import SyncSettings

        return SyncSettings()


def _sql_error() -> OperationalError:
    return OperationalError(
        f"INSERT INTO sync_asset_chunks VALUES ('{PERSON}')", {"rows_json": PERSON}, Exception("server closed the connection")
    )


def _failure(result: dg.ExecuteInProcessResult) -> Any:
    """The step's own Failure (under Dagster's "Exceeded max_retries" when the source retried)."""
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    error = failures[0].event_specific_data.error
    while error.cls_name != "Failure" and error.cause is not None:
        error = error.cause
    return error


@pytest.mark.parametrize("exc", [_sql_error(), StoreUnavailable("sync store at sqlite:///x is unreachable")])
def test_a_source_fails_with_a_clear_message_and_no_sql_text(exc: Exception) -> None:
    result = dg.materialize(
        [viewpoint_departments],
        resources={"vista": _Vista(), "store": _StoreResource(exc)},
        raise_on_error=False,
    )
    assert not result.success
    error = _failure(result)
    assert "The sync store failed during viewpoint/departments" in error.message
    assert error.cause is None and error.context is None
    everything = "\n".join(str(e) for e in result.all_events)
    assert PERSON not in everything and "INSERT INTO" not in everything


def test_a_desired_asset_fails_with_a_clear_message_and_no_sql_text() -> None:
    result = dg.materialize(
        [desired_site_clusters],
        resources={"store": _StoreResource(_sql_error()), "sync_settings": _Settings()},
        raise_on_error=False,
    )
    assert not result.success
    error = _failure(result)
    assert "The sync store failed during desired/site_clusters (Exception: server closed the connection)" in error.message
    assert error.cause is None and error.context is None
    assert PERSON not in "\n".join(str(e) for e in result.all_events)
