"""End-to-end fixtures: a seeded sandbox (real emulators), a real store and a Dagster instance."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from safetyamp_pipeline.sync.headless import SyncOutcome, run_job

E2E_EMPLOYEES = 120
E2E_SEED = 11


@dataclass
class SandboxRun:
    """A running sandbox plus the environment, store and instance the pipeline uses with it."""

    directory: Path
    env: dict[str, str]
    sandbox: Any
    instance: dg.DagsterInstance

    def sync(self, job: str = "safetyamp_sync", **kwargs: Any) -> SyncOutcome:
        return run_job(self.env, job, instance=self.instance, **kwargs)

    # -- emulator admin ----------------------------------------------------------------------------
    def _admin(self, service: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        base = self.env[{"safetyamp": "SAFETYAMP_API_URL", "samsara": "SAMSARA_API_URL", "graph": "MS_GRAPH_API_URL"}[service]]
        verify = self.env.get("SAFETYAMP_CA_BUNDLE") or True
        response = requests.request(method, f"{base}/__sandbox/{path}", timeout=30, verify=verify, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def requests(self, service: str = "safetyamp") -> dict[str, Any]:
        return self._admin(service, "requests")

    def reset_requests(self) -> None:
        for service in ("safetyamp", "samsara", "graph"):
            self._admin(service, "requests/reset", method="POST")

    def state(self, service: str = "safetyamp") -> dict[str, Any]:
        return self._admin(service, "state")

    def set_faults(self, service: str = "safetyamp", **faults: Any) -> None:
        self._admin(service, "faults", method="POST", json=faults)

    def safetyamp(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.env['SAFETYAMP_TOKEN']}", "Fqdn": self.env["SAFETYAMP_FQDN"]}
        return requests.request(method, f"{self.env['SAFETYAMP_API_URL']}{path}", headers=headers, timeout=30, **kwargs)

    def vista(self) -> sqlite3.Connection:
        return sqlite3.connect(self.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///"))

    @property
    def store(self) -> Any:
        from safetyamp_pipeline.store import SyncStore

        return SyncStore(self.env["SAFETYAMP_STORE_URL"])


def start_run(
    tmp: Path,
    employees: int = E2E_EMPLOYEES,
    seed: int = E2E_SEED,
    *,
    jobs: int | None = None,
    vehicles: int | None = None,
    **sandbox_kwargs: Any,
) -> tuple[Any, SandboxRun]:
    """Seed a data set under ``tmp``, start the emulators (rate limit off unless given) and return
    the sandbox with the environment, store and Dagster instance the pipeline uses with it."""
    from safetyamp_pipeline.sandbox.generate import generate_dataset
    from safetyamp_pipeline.sandbox.runtime import start_sandbox

    data = tmp / "sandbox"
    generate_dataset(data, employees=employees, seed=seed, jobs=jobs, vehicles=vehicles)
    sandbox = start_sandbox(data, rate_limit=sandbox_kwargs.pop("rate_limit", None), **sandbox_kwargs)
    home = tmp / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {
        **sandbox.env,
        "SAFETYAMP_RATE_LIMIT": "100000",
        "SAFETYAMP_STORE_URL": f"sqlite:///{tmp / 'store.db'}",
        "DAGSTER_HOME": str(home),
    }
    instance = dg.DagsterInstance.local_temp(str(home))
    return sandbox, SandboxRun(directory=data, env=env, sandbox=sandbox, instance=instance)


@contextmanager
def synced_sandbox(tmp: Path) -> Iterator[SandboxRun]:
    """A sandbox after one successful sync, stopped on exit (module fixtures of the e2e tests that
    change the tenant or Vista after that first sync)."""
    sandbox, run = start_run(tmp)
    try:
        first = run.sync()
        assert first.success, first.failure
        yield run
    finally:
        run.instance.dispose()
        sandbox.stop()


def users_by_emp_id(run: SandboxRun) -> dict[str, dict]:
    return {str(u["emp_id"]): u for u in run.state()["users"] if u.get("emp_id")}


@pytest.fixture
def sandbox_run(tmp_path: Path) -> Iterator[SandboxRun]:
    sandbox, run = start_run(tmp_path)
    try:
        yield run
    finally:
        run.instance.dispose()
        sandbox.stop()


@pytest.fixture(scope="module")
def synced_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxRun, SyncOutcome]]:
    """One sandbox, synced once, shared by the read-only tests of a module."""
    sandbox, run = start_run(tmp_path_factory.mktemp("synced"))
    try:
        outcome = run.sync()
        yield run, outcome
    finally:
        run.instance.dispose()
        sandbox.stop()
