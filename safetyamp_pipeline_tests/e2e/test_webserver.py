"""The Dagster UI end to end: webserver and daemon on the sandbox, driven through GraphQL.

The test starts ``dagster-webserver`` and ``dagster-daemon`` as real processes (own
``DAGSTER_HOME`` with the repo's dagster.yaml, free port), checks the code location the UI serves
holds the whole graph, launches ``safetyamp_sync`` for the current payroll week the way the UI's
"Materialize" button does (``launchRun``; the queued run coordinator hands it to the daemon), and
reads the sink's materialization metadata back. ``docs/screenshots.py`` reuses :class:`DagsterUI`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
LOCATION = "safetyamp_pipeline"
REPOSITORY = "__repository__"
SYNC_JOB = "safetyamp_sync"

# What the webserver must serve is the reviewed graph snapshot (defs/test_graph_snapshot.py keeps it
# equal to the code location's definitions); this test proves the running webserver serves all of it.
GRAPH_SNAPSHOT = json.loads((REPO_ROOT / "safetyamp_pipeline_tests" / "defs" / "graph_snapshot.json").read_text())
EXPECTED_ASSETS = set(GRAPH_SNAPSHOT["assets"])
SINKS = ("site_clusters", "sites", "user_titles", "users", "assets")
EXPECTED_CHECKS = {(asset, check["name"]) for asset, node in GRAPH_SNAPSHOT["assets"].items() for check in node["checks"]}
EXPECTED_JOBS = set(GRAPH_SNAPSHOT["jobs"])
EXPECTED_SCHEDULES = set(GRAPH_SNAPSHOT["schedules"])
EXPECTED_SENSORS = set(GRAPH_SNAPSHOT["sensors"])

UI_EMPLOYEES = 120
UI_SEED = 11
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""

REPOSITORY_QUERY = """
query Repository($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) { __typename
    ... on Repository {
      jobs { name }
      schedules { name }
      sensors { name }
      assetNodes { assetKey { path }
        assetChecksOrError { __typename ... on AssetChecks { checks { name } } } }
    }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message } } }
"""

LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message } } }
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename
    ... on Run { status tags { key value } }
    ... on Error { message } } }
"""

MATERIALIZATIONS_QUERY = """
query Materializations($key: AssetKeyInput!, $limit: Int!) {
  assetOrError(assetKey: $key) { __typename
    ... on Asset { assetMaterializations(limit: $limit) { runId partition metadataEntries { label __typename
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
        ... on BoolMetadataEntry { boolValue }
        ... on TextMetadataEntry { text }
        ... on MarkdownMetadataEntry { mdStr } } } }
    ... on AssetNotFoundError { message } } }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterUIError(RuntimeError):
    """The webserver, the daemon or a run did not do what was asked; the message says what."""


class DagsterUI:
    """A seeded sandbox with ``dagster-webserver`` and ``dagster-daemon`` running against it.

    Everything lives under ``workdir`` (sandbox data, store, DAGSTER_HOME, process logs). Use as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, workdir: Path, employees: int = UI_EMPLOYEES, seed: int = UI_SEED) -> None:
        self.workdir = Path(workdir).resolve()
        self.employees = employees
        self.seed = seed
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env: dict[str, str] = {}
        self.sandbox: Any = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, load_timeout: float = 120) -> DagsterUI:
        from safetyamp_pipeline.sandbox.generate import generate_dataset
        from safetyamp_pipeline.sandbox.runtime import start_sandbox

        data = self.workdir / "sandbox"
        generate_dataset(data, employees=self.employees, seed=self.seed)
        self.sandbox = start_sandbox(data, rate_limit=None)
        home = self.workdir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
        # Create the SQLite storages now: webserver and daemon racing to migrate a fresh
        # DAGSTER_HOME fail with "table alembic_version already exists".
        import dagster as dg

        dg.DagsterInstance.from_config(str(home)).dispose()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SAFETYAMP_", "DAGSTER_"))}
        self.env = {
            **base,
            **self.sandbox.env,
            "SAFETYAMP_RATE_LIMIT": "100000",
            "SAFETYAMP_STORE_URL": f"sqlite:///{self.workdir / 'store.db'}",
            "DAGSTER_HOME": str(home),
        }
        try:
            workspace = str(REPO_ROOT / "workspace.yaml")
            self._spawn("webserver", [str(VENV_BIN / "dagster-webserver"), "-w", workspace,
                                      "-h", "127.0.0.1", "-p", str(self.port)])
            self._spawn("daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", workspace])
            self.wait_until_loaded(load_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log_path = self.workdir / f"{name}.log"
        self.logs[name] = log_path
        with log_path.open("wb") as log:
            # A session of its own: the process and its code servers / run workers share one group.
            self.processes[name] = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def stop(self) -> None:
        """Terminate each process group (SIGTERM, then SIGKILL after 30 s) and the sandbox."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            # Children (code servers, run workers) may outlive their parent: end the group too.
            if not _wait_group_gone(process.pid, 15):
                _signal_group(process.pid, signal.SIGKILL)
                _wait_group_gone(process.pid, 15)
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def __enter__(self) -> DagsterUI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tails(self, chars: int = 4000) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            process = self.processes.get(name)
            state = "running" if process and process.poll() is None else f"exit={process and process.poll()}"
            parts.append(f"----- {name} ({state}) -----\n{text[-chars:]}")
        return "\n".join(parts)

    # -- GraphQL --------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise DagsterUIError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DagsterUIError(f"dagster {name} exited with {process.returncode}\n{self.log_tails()}")

    def wait_until_loaded(self, timeout: float) -> None:
        """Wait until the webserver answers and the code location is LOADED (raise on a load error)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self.graphql(WORKSPACE_QUERY, timeout=10)["workspaceOrError"]
            except (requests.RequestException, ValueError):
                time.sleep(1)
                continue
            entries = {e["name"]: e for e in last.get("locationEntries", [])}
            entry = entries.get(LOCATION)
            if entry and entry["loadStatus"] == "LOADED":
                located = entry["locationOrLoadError"]
                if located["__typename"] == "PythonError":
                    raise DagsterUIError(f"code location failed to load: {located['message']}")
                return
            time.sleep(1)
        raise DagsterUIError(f"code location not loaded after {timeout:.0f} s (last: {last})\n{self.log_tails()}")

    def repository(self) -> dict[str, Any]:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        found = self.graphql(REPOSITORY_QUERY, {"selector": selector})["repositoryOrError"]
        if found["__typename"] != "Repository":
            raise DagsterUIError(f"repository not served: {found}")
        return found

    def launch(self, job: str = SYNC_JOB, partition: str | None = None) -> dict[str, str]:
        """Launch ``job`` (for ``partition`` when given) as the UI does; returns ``{runId, status}``."""
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": {},
            "executionMetadata": {"tags": tags},
        }
        result = self.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterUIError(f"launchRun of {job} refused: {result}")
        return result["run"]

    def wait_for_run(self, run_id: str, timeout: float = 120) -> str:
        """Poll the run until it finishes; returns its final status."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
            if run["__typename"] != "Run":
                raise DagsterUIError(f"run {run_id} not found: {run}")
            status = run["status"]
            if status in FINISHED:
                return status
            time.sleep(1)
        raise DagsterUIError(f"run {run_id} still {status} after {timeout:.0f} s\n{self.log_tails()}")

    def sync(self, partition: str | None = None, timeout: float = 120) -> str:
        """Launch ``safetyamp_sync`` for ``partition`` (default: the current week) and wait for success."""
        from safetyamp_pipeline.sync.calendar import current_week_key

        run_id = self.launch(SYNC_JOB, partition or current_week_key())["runId"]
        status = self.wait_for_run(run_id, timeout)
        if status != "SUCCESS":
            raise DagsterUIError(f"run {run_id} ended {status}\n{self.log_tails()}")
        return run_id

    def materializations(self, asset: str, limit: int = 1) -> list[dict[str, Any]]:
        """The latest ``limit`` materializations of ``asset`` (newest first), metadata by label."""
        key = {"path": asset.split("/")}
        found = self.graphql(MATERIALIZATIONS_QUERY, {"key": key, "limit": limit})["assetOrError"]
        if found["__typename"] != "Asset":
            raise DagsterUIError(f"asset {asset} not found: {found}")
        events = []
        for event in found["assetMaterializations"]:
            metadata = {}
            for entry in event["metadataEntries"]:
                values = [v for k, v in entry.items() if k not in ("label", "__typename")]
                metadata[entry["label"]] = values[0] if values else entry["__typename"]
            events.append({"runId": event["runId"], "partition": event["partition"], "metadata": metadata})
        return events


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes_started_by(ui: DagsterUI) -> list[str]:
    """Every live process whose environment holds this UI's DAGSTER_HOME (Linux /proc)."""
    marker = f"DAGSTER_HOME={ui.env['DAGSTER_HOME']}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {command}")
        except OSError:
            continue
    return found


def _wait_group_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --------------------------------------------------------------------------------------------
# The test


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    dagster_ui = DagsterUI(tmp_path_factory.mktemp("webserver"))
    dagster_ui.start()
    try:
        # The leftover check below can only find what this finds while everything runs.
        assert len(processes_started_by(dagster_ui)) >= 2
        yield dagster_ui
    finally:
        dagster_ui.stop()
        leftover = processes_started_by(dagster_ui)
        assert not leftover, "processes still alive after stop:\n" + "\n".join(leftover)


def test_code_location_serves_the_whole_graph(ui: DagsterUI) -> None:
    repository = ui.repository()
    assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
    assert assets == EXPECTED_ASSETS
    checks = set()
    for node in repository["assetNodes"]:
        found = node["assetChecksOrError"]
        assert found["__typename"] == "AssetChecks", found
        checks |= {("/".join(node["assetKey"]["path"]), check["name"]) for check in found["checks"]}
    assert checks == EXPECTED_CHECKS
    jobs = {job["name"] for job in repository["jobs"]} - {"__ASSET_JOB"}
    assert jobs == EXPECTED_JOBS
    assert {s["name"] for s in repository["schedules"]} == EXPECTED_SCHEDULES
    assert {s["name"] for s in repository["sensors"]} == EXPECTED_SENSORS


def test_sync_launched_through_the_ui_writes_safetyamp(ui: DagsterUI) -> None:
    from safetyamp_pipeline.sync.calendar import current_week_key

    week = current_week_key()
    launched = ui.launch(SYNC_JOB, week)
    run_id = launched["runId"]
    # The webserver only queues the run; the daemon's run coordinator starts it.
    assert launched["status"] == "QUEUED"
    status = ui.wait_for_run(run_id, timeout=150)
    assert status == "SUCCESS", f"run {run_id} ended {status}\n{ui.log_tails()}"

    [users] = ui.materializations("safetyamp/users")
    assert users["runId"] == run_id
    assert users["metadata"]["created"] > 0
    assert users["metadata"]["failed"] == 0
    assert users["metadata"]["dry_run"] is False
    [assignments] = ui.materializations("viewpoint/job_assignments")
    assert assignments["runId"] == run_id and assignments["partition"] == week
    # What the UI reports is what the (emulated) SafetyAmp now holds.
    state = requests.get(f"{ui.env['SAFETYAMP_API_URL']}/__sandbox/state", timeout=30).json()
    assert len(state["users"]) >= users["metadata"]["created"]
