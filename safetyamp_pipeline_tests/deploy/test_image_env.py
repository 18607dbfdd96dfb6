"""The image's Python environment, built the way the Dockerfile's builder stage builds it, serves
the code location with the image's own command.

Without a Docker engine the system packages (ODBC driver) are not installed; everything Python is:
the same COPY set into a clean build context, the same ``pip install`` into a fresh venv (pip's
local cache is allowed, unlike in the image, so a second run does not download again), then the
image's CMD (on 127.0.0.1 and a free port) and the chart's readiness probe command.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.deploy.dockerfile import (
    DOCKERFILE,
    context_copies,
    ignore_patterns,
    is_ignored,
    parse_stages,
    pip_installs,
)
from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, REPO_ROOT, load_yaml

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_context(source: str, destination: str, context: Path) -> None:
    """Docker's ``COPY <source> <destination>`` (relative to WORKDIR = ``context``), leaving
    out what .dockerignore leaves out."""
    patterns = ignore_patterns()
    origin = REPO_ROOT / source
    target = context / destination
    if origin.is_file():
        if destination.endswith("/"):
            target = target / origin.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
        return
    for path in origin.rglob("*"):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if path.is_file() and not is_ignored(rel, patterns):
            copied = target / path.relative_to(origin)
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copied)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    builder = parse_stages(DOCKERFILE.read_text())[0]
    root = tmp_path_factory.mktemp("image")
    context = root / "build"
    for source, destination in context_copies(builder):
        _copy_context(source, destination, context)

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_NO_CACHE_DIR", None)
    commands = pip_installs(builder)
    assert commands, "the builder stage installs the project with pip"
    for command in commands:
        argv = [str(venv / "bin" / "pip"), *command[command.index("install") :]]
        result = subprocess.run(argv, cwd=context, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return venv


def test_image_env_has_the_pinned_dagster_family(image_venv: Path) -> None:
    pins = {
        dep.split("==")[0]: dep.split("==")[1]
        for dep in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if dep.startswith("dagster")
    }
    assert set(pins) == {"dagster", "dagster-k8s", "dagster-postgres", "dagster-azure"}
    script = (
        "import importlib.metadata as m, json, dagster_k8s, dagster_postgres, dagster_azure;"
        f"print(json.dumps({{n: m.version(n) for n in {sorted(pins)!r}}}))"
    )
    out = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == pins


def test_image_command_serves_the_code_location(image_venv: Path, tmp_path: Path) -> None:
    runtime = parse_stages(DOCKERFILE.read_text())[1]
    cmd = json.loads(next(rest for keyword, rest in reversed(runtime.instructions) if keyword == "CMD"))
    port = _free_port()
    cmd[cmd.index("-h") + 1] = "127.0.0.1"
    cmd[cmd.index("-p") + 1] = str(port)
    cmd[0] = str(image_venv / "bin" / cmd[0])

    # The pod's environment: the chart's non-secret env from helm-values.yaml, no credentials.
    deployment = load_yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"][0]
    home = tmp_path / "dagster_home"
    home.mkdir()
    workdir = tmp_path / "app"  # not the repo: the code must come from the installed package
    workdir.mkdir()
    env = {
        "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(home),
        **{item["name"]: item["value"] for item in deployment["env"]},
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = [str(image_venv / "bin" / "dagster"), "api", "grpc-health-check", "-p", str(port)]
        deadline = time.monotonic() + 120
        serving = False
        while time.monotonic() < deadline and server.poll() is None:
            probe = subprocess.run(health, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
            if probe.returncode == 0:
                serving = True
                break
            time.sleep(1)
        log.flush()
        output = (tmp_path / "server.log").read_text()
        assert serving, f"code server never reported SERVING (exit={server.poll()}):\n{output[-4000:]}"

        from dagster._grpc.client import DagsterGrpcClient
        from dagster._grpc.types import ListRepositoriesResponse
        from dagster_shared.serdes import deserialize_value

        response = deserialize_value(DagsterGrpcClient(port=port, host="127.0.0.1").list_repositories())
        assert isinstance(response, ListRepositoriesResponse), response
        assert Path(response.executable_path).is_relative_to(image_venv)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
