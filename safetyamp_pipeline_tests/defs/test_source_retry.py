"""Issue 17.4: source reads (idempotent, often transiently failing) retry with exponential back-off
and jitter; sinks, which may have written before failing, and pure desired steps never retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from safetyamp_pipeline.defs.sources.retry import source_retry_policy
from safetyamp_pipeline.defs.sources.viewpoint import viewpoint_departments

SOURCE_GROUPS = {"viewpoint", "entra", "samsara"}


# The suite turns source retries off (safetyamp_pipeline_tests/conftest.py); the code location is
# loaded here in a child process with the production defaults.
PROBE = """
import json
from safetyamp_pipeline.definitions import defs
graph = defs().resolve_asset_graph()
out = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    if node.is_materializable:
        p = node.assets_def.op.retry_policy
        out[key.to_user_string()] = None if p is None else [p.max_retries, p.delay, p.backoff.value, p.jitter.value]
print(json.dumps(out))
"""


def test_every_source_retries_and_nothing_else_does() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYAMP_SOURCE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    policies = json.loads(result.stdout.strip().splitlines()[-1])
    sources = {k: v for k, v in policies.items() if k.split("/")[0] in SOURCE_GROUPS}
    assert set(sources) >= {
        "viewpoint/departments", "viewpoint/jobs", "viewpoint/employees",
        "viewpoint/job_assignments", "entra/users", "samsara/vehicles",
    }
    for key, policy in sources.items():
        assert policy == [3, 10.0, "EXPONENTIAL", "PLUS_MINUS"], (key, policy)
    others = {k: v for k, v in policies.items() if k.split("/")[0] not in SOURCE_GROUPS}
    assert any(k.startswith("safetyamp/") for k in others) and any(k.startswith("desired/") for k in others)
    assert {k: v for k, v in others.items() if v is not None} == {}, "sinks and desired steps must not retry"


def test_no_sync_job_retries_ops_behind_the_assets_back() -> None:
    from safetyamp_pipeline.definitions import defs

    for job in defs().get_repository_def().get_all_jobs():
        assert getattr(job, "_op_retry_policy", None) is None, job.name


def test_default_policy_backs_off_exponentially_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFETYAMP_SOURCE_MAX_RETRIES", raising=False)
    monkeypatch.delenv("SAFETYAMP_SOURCE_RETRY_DELAY_SECONDS", raising=False)
    policy = source_retry_policy()
    assert policy is not None and policy.max_retries == 3 and policy.delay == 10
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
    monkeypatch.setenv("SAFETYAMP_SOURCE_MAX_RETRIES", "0")
    assert source_retry_policy() is None  # off: no policy rather than "Exceeded max_retries of 0"
    monkeypatch.delenv("SAFETYAMP_SOURCE_MAX_RETRIES")
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
    policy = dg.RetryPolicy(max_retries=3, delay=0.05)
    # The same asset with a short delay (the production delay is 10 s).
    body = viewpoint_departments.op.compute_fn.decorated_fn  # type: ignore[union-attr]
    quick = dg.asset(key=["viewpoint", "departments"], retry_policy=policy)(body)
    result = dg.materialize([quick], resources={"vista": vista, "store": store}, raise_on_error=False)
    assert result.success
    assert vista.calls == 2 and store.saved == ["viewpoint/departments"]
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
