"""The `safetyamp-sandbox` CLI: seed, up --detach, status, down, and its errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msal
import pytest
import requests

from safetyamp_pipeline.sandbox.cli import main, process_alive
from safetyamp_pipeline.sandbox.runtime import load_env_file

ENTRY_POINT = Path(sys.executable).with_name("safetyamp-sandbox")


def cli(*args: str, entry_point: bool = False) -> subprocess.CompletedProcess:
    command = [str(ENTRY_POINT)] if entry_point else [sys.executable, "-m", "safetyamp_pipeline.sandbox.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=90, env=env)


@pytest.fixture
def sandbox_dirs(tmp_path: Path) -> Iterator[list[Path]]:
    """Directories used by a test; any sandbox still running on one is stopped afterwards."""
    dirs: list[Path] = []
    yield dirs
    for directory in dirs:
        pid_file = directory / "sandbox.pid"
        if not pid_file.exists():
            continue
        cli("down", "--dir", str(directory))
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_global_ca_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these override a Session's `verify` (how MSAL applies `verify=`).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_seed_up_detach_status_down_with_the_installed_entry_point(
    tmp_path: Path, sandbox_dirs: list[Path]
) -> None:
    assert ENTRY_POINT.exists(), "pip install -e . must provide the safetyamp-sandbox command"
    run = tmp_path / "sandbox"
    sandbox_dirs.append(run)

    seeded = cli("seed", "--dir", str(run), "--employees", "40", "--seed", "3", entry_point=True)
    assert seeded.returncode == 0, seeded.stderr
    for name in ("vista.db", "safetyamp.json", "samsara.json", "graph.json"):
        assert (run / name).is_file(), name
    vehicles_seeded = json.loads((run / "samsara.json").read_text())["vehicles"]

    up = cli("up", "--dir", str(run), "--detach", entry_point=True)
    assert up.returncode == 0, up.stderr
    env_path = run / "sandbox.env"
    assert str(env_path) in up.stdout
    env = load_env_file(env_path)
    assert env["SAFETYAMP_API_URL"] in up.stdout and env["MS_GRAPH_API_URL"] in up.stdout
    pid = int((run / "sandbox.pid").read_text())

    roles = requests.get(
        env["SAFETYAMP_API_URL"] + "/api/roles",
        headers={"Authorization": f"Bearer {env['SAFETYAMP_TOKEN']}", "Fqdn": env["SAFETYAMP_FQDN"]},
        timeout=5,
    )
    assert roles.status_code == 200 and roles.json()["data"]
    vehicles = requests.get(
        env["SAMSARA_API_URL"] + "/fleet/vehicles",
        headers={"Authorization": f"Bearer {env['SAMSARA_API_TOKEN']}"},
        timeout=5,
    ).json()["data"]
    assert sorted(v["id"] for v in vehicles) == sorted(v["id"] for v in vehicles_seeded)
    app = msal.ConfidentialClientApplication(
        env["MS_GRAPH_CLIENT_ID"],
        client_credential=env["MS_GRAPH_CLIENT_SECRET"],
        authority=f"{env['MS_GRAPH_AUTHORITY_HOST']}/{env['MS_GRAPH_TENANT_ID']}",
        instance_discovery=False,
        verify=env["SAFETYAMP_CA_BUNDLE"],
    )
    token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])["access_token"]
    app.http_client.close()
    users = requests.get(
        env["MS_GRAPH_API_URL"] + "/v1.0/users",
        headers={"Authorization": f"Bearer {token}"},
        verify=env["SAFETYAMP_CA_BUNDLE"],
        timeout=5,
    )
    assert users.status_code == 200 and users.json()["value"]

    status = cli("status", "--dir", str(run))
    assert status.returncode == 0 and str(pid) in status.stdout
    again = cli("up", "--dir", str(run), "--detach")
    assert again.returncode == 1 and "already running" in again.stderr

    down = cli("down", "--dir", str(run), entry_point=True)
    assert down.returncode == 0, down.stderr
    assert not (run / "sandbox.pid").exists()
    assert not process_alive(pid)
    with pytest.raises(requests.ConnectionError):
        requests.get(env["SAMSARA_API_URL"] + "/fleet/vehicles", timeout=2)
    assert cli("status", "--dir", str(run)).returncode == 3
    assert cli("down", "--dir", str(run)).returncode == 0  # nothing to stop is not an error


def test_fault_flags_rate_limit_zero_and_page_cap_reach_the_running_emulators(
    tmp_path: Path, sandbox_dirs: list[Path]
) -> None:
    run = tmp_path / "faulty"
    sandbox_dirs.append(run)
    up = cli(
        "up", "--dir", str(run), "--detach", "--rate-limit", "0", "--error-rate", "1", "--latency-ms", "5",
        "--safetyamp-max-page-size", "2",
    )
    assert up.returncode == 0, up.stderr
    env = load_env_file(run / "sandbox.env")
    answer = requests.get(
        env["SAMSARA_API_URL"] + "/fleet/vehicles",
        headers={"Authorization": f"Bearer {env['SAMSARA_API_TOKEN']}"},
        timeout=5,
    )
    assert answer.status_code >= 500
    faults = requests.get(env["SAFETYAMP_API_URL"] + "/__sandbox/faults", timeout=5).json()
    assert faults["error_rate"] == 1.0 and faults["latency_ms"] == 5
    requests.post(env["SAFETYAMP_API_URL"] + "/__sandbox/faults", json={}, timeout=5)
    headers = {"Authorization": f"Bearer {env['SAFETYAMP_TOKEN']}", "Fqdn": env["SAFETYAMP_FQDN"]}
    with requests.Session() as session:
        statuses = {
            session.get(env["SAFETYAMP_API_URL"] + "/api/roles", headers=headers).status_code
            for _ in range(65)
        }
    assert statuses == {200}
    for name in ("Welder", "Foreman", "Laborer"):
        created = requests.post(env["SAFETYAMP_API_URL"] + "/api/user_titles", json={"name": name}, headers=headers, timeout=5)
        assert created.status_code in (200, 201), created.text
    pages = [
        [t["name"] for t in requests.get(
            env["SAFETYAMP_API_URL"] + f"/api/user_titles?page={page}&limit=100", headers=headers, timeout=5
        ).json()["data"]]
        for page in (1, 2)
    ]
    assert pages == [["Welder", "Foreman"], ["Laborer"]]  # `limit` clamped to 2 without a word
    assert cli("down", "--dir", str(run)).returncode == 0


def test_malformed_fixture_exits_2_naming_the_file_also_when_detached(
    tmp_path: Path, sandbox_dirs: list[Path]
) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "graph.json").write_text('{"users": [{"id": 1}]}')
    run = tmp_path / "run"
    sandbox_dirs.append(run)
    detached = cli("up", "--dir", str(run), "--fixtures", str(fixtures), "--detach")
    assert detached.returncode == 2
    lines = detached.stderr.strip().splitlines()
    assert len(lines) == 1 and str(fixtures / "graph.json") in lines[0] and "users[0].id" in lines[0]
    assert not (run / "sandbox.pid").exists()


def test_errors_in_process_are_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "samsara.json").write_text("{broken")
    assert main(["up", "--dir", str(tmp_path / "run"), "--fixtures", str(fixtures)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("safetyamp-sandbox: error: ") and str(fixtures / "samsara.json") in error
    assert "not valid JSON" in error and "\n" not in error

    assert main(["up", "--dir", str(tmp_path / "run"), "--fixtures", str(tmp_path / "absent")]) == 2
    assert "fixture directory does not exist" in capsys.readouterr().err

    assert main(["seed", "--dir", str(tmp_path / "tiny"), "--employees", "3"]) == 2
    assert "employees" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["up", "--dir", str(tmp_path), "--error-rate", "2"])
    assert usage.value.code == 2
