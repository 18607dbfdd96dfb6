"""`dagster dev` accepts the repo's dagster.yaml: webserver up, run queue active."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.deploy.paths import LOCAL_INSTANCE_YAML, REPO_ROOT

pytestmark = pytest.mark.slow

QUERY = "{ instance { runQueuingSupported daemonHealth { id } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_dagster_dev_starts_with_the_local_instance(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETYAMP_")}
    env["DAGSTER_HOME"] = str(home)
    dagster = Path(sys.executable).parent / "dagster"
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        dev = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its webserver, daemon and code server share this group
        )
        try:
            answer = None
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and dev.poll() is None:
                try:
                    answer = _graphql(port)
                    break
                except OSError:
                    time.sleep(2)
            output = log_path.read_text()
            assert answer is not None, f"dagster dev did not serve (exit={dev.poll()}):\n{output[-4000:]}"
            assert answer["data"]["instance"]["runQueuingSupported"] is True
            assert "DagsterInvalidConfigError" not in output
        finally:
            if dev.poll() is None:
                os.killpg(dev.pid, signal.SIGTERM)
                try:
                    dev.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(dev.pid, signal.SIGKILL)
                    dev.wait(timeout=30)
