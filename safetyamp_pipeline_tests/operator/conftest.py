"""One synced sandbox shared by the operator CLI tests, and a helper that runs the CLI in process.

Before the first sync the Entra accounts of the generator's planted ``duplicate_email`` employees
are disabled, so their shared Vista e-mail is used and the second one is rejected for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from safetyamp_pipeline import cli
from safetyamp_pipeline.core.models import DesiredRecord, record_from_row
from safetyamp_pipeline.core.normalize import canonical_emp_id
from safetyamp_pipeline.sync.headless import SyncOutcome
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run


@dataclass
class Synced:
    run: SandboxRun
    first: SyncOutcome
    cases: dict[str, list[str]]

    @property
    def store_url(self) -> str:
        return self.run.env["SAFETYAMP_STORE_URL"]

    def desired(self, asset: str) -> list[DesiredRecord]:
        return [record_from_row(row) for row in self.run.store.load_asset_value(asset)]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(scope="package")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    sandbox, run = start_run(tmp_path_factory.mktemp("operator"))
    try:
        cases = json.loads((run.directory / "summary.json").read_text())["cases"]
        duplicates = set(cases["duplicate_email"])
        graph = run.state("graph")
        for user in graph["users"]:
            if canonical_emp_id(user.get("employeeId")) in duplicates:
                user["accountEnabled"] = False
        run._admin("graph", "state", method="POST", json=graph)
        outcome = run.sync()
        assert outcome.success, outcome.failure
        yield Synced(run, outcome, cases)
    finally:
        run.instance.dispose()
        sandbox.stop()


@pytest.fixture
def pipeline(capsys: pytest.CaptureFixture[str], synced: Synced):
    """Run ``safetyamp-pipeline`` in process against the sandbox's store."""

    def invoke(*args: Any, store_url: str | None = None) -> Result:
        capsys.readouterr()
        code = cli.main([*map(str, args), "--store-url", store_url or synced.store_url])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
