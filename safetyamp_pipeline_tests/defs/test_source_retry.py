"""Issue 17.4: source reads (idempotent, often transiently failing) retry with exponential back-off
and jitter; sinks, which may have written before failing, and pure desired steps never retry."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from safetyamp_pipeline.defs.sources.retry import SOURCE_RETRY, source_retry_policy
from safetyamp_pipeline.defs.sources.viewpoint import viewpoint_departments

SOURCE_GROUPS = {"viewpoint", "entra", "samsara"}


@pytest.fixture(scope="module")
def assets_by_key() -> dict[dg.AssetKey, dg.AssetsDefinition]:
    from safetyamp_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    return {key: graph.get(key).assets_def for key in graph.get_all_asset_keys()}


def test_every_source_retries_and_nothing_else_does(assets_by_key: dict[dg.AssetKey, dg.AssetsDefinition]) -> None:
    sources = [a for k, a in assets_by_key.items() if k.path[0] in SOURCE_GROUPS]
    assert {tuple(a.key.path) for a in sources} >= {
        ("viewpoint", "departments"), ("viewpoint", "jobs"), ("viewpoint", "employees"),
        ("viewpoint", "job_assignments"), ("entra", "users"), ("samsara", "vehicles"),
    }
    for asset in sources:
        assert asset.op.retry_policy == SOURCE_RETRY, asset.key
    others = [a for k, a in assets_by_key.items() if k.path[0] not in SOURCE_GROUPS]
    assert any(a.key.path[0] == "safetyamp" for a in others)
    for asset in others:
        assert asset.op.retry_policy is None, f"{asset.key.to_user_string()} must not retry"


def test_no_sync_job_retries_ops_behind_the_assets_back() -> None:
    from safetyamp_pipeline.definitions import defs

    for job in defs().get_repository_def().get_all_jobs():
        assert getattr(job, "_op_retry_policy", None) is None, job.name


def test_default_policy_backs_off_exponentially_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFETYAMP_SOURCE_MAX_RETRIES", raising=False)
    monkeypatch.delenv("SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS", raising=False)
    policy = source_retry_policy()
    assert policy.max_retries == 3 and policy.delay == 10
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    monkeypatch.setenv("SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS", "-1")
    with pytest.raises(ValueError, match="SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS"):
        source_retry_policy()


class _FlakyVista:
    """Vista that drops the first connection, then answers."""

    def __init__(self) -> None:
        self.calls = 0

    def get_client(self) -> Any:
        outer = self

        class Client:
            def departments(self) -> list[dict]:
                outer.calls += 1
                if outer.calls == 1:
                    raise ConnectionError("Vista: connection reset by peer")
                return [{"PRCo": 1, "PRDept": "10", "Description": "Ops", "udRegion": "N"}]

        return Client()


class _Store:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def get_store(self) -> Any:
        outer = self

        class Store:
            def save_asset_value(self, key: str, rows: list, **kwargs: Any) -> int:
                outer.saved.append(key)
                return len(rows)

        return Store()


def test_a_transient_source_failure_is_retried_and_the_read_succeeds() -> None:
    vista, store = _FlakyVista(), _Store()
    policy = dg.RetryPolicy(max_retries=SOURCE_RETRY.max_retries or 1, delay=0.05)
    # The same asset with a short delay (the production delay is 10 s).
    body = viewpoint_departments.op.compute_fn.decorated_fn  # type: ignore[union-attr]
    quick = dg.asset(key=["viewpoint", "departments"], retry_policy=policy)(body)
    result = dg.materialize([quick], resources={"vista": vista, "store": store}, raise_on_error=False)
    assert result.success
    assert vista.calls == 2 and store.saved == ["viewpoint/departments"]
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
