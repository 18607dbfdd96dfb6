"""`safetyamp-pipeline doctor` against the running sandbox (real emulators, real SQLite Vista,
a real sync store and Dagster instance), as an operator runs it: the installed command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

SYSTEMS = ["Vista", "SafetyAmp", "Samsara", "Microsoft Graph", "Key Vault", "sync store", "Dagster instance"]
SECRETS = ("SAFETYAMP_TOKEN", "SAMSARA_API_TOKEN", "MS_GRAPH_CLIENT_SECRET")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    running, run = start_run(tmp_path_factory.mktemp("doctor"), employees=60)
    SyncStore(run.env["SAFETYAMP_STORE_URL"]).close()  # the store as a first sync leaves it
    (Path(run.env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    try:
        yield run
    finally:
        run.instance.dispose()
        running.stop()


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "safetyamp-pipeline"
    return subprocess.run([str(command), "doctor", "--timeout", "10"], env=env, capture_output=True, text=True, timeout=300)


def _line(output: str, system: str) -> str:
    (line,) = [line for line in output.splitlines() if line[5:].startswith(system + " ")]
    return line


def test_all_systems_answer(sandbox: SandboxRun) -> None:
    done = doctor(sandbox.env)
    assert done.returncode == 0, done.stdout + done.stderr
    for system in SYSTEMS:
        assert _line(done.stdout, system).startswith("OK   "), done.stdout
    assert "7/7 systems answered" in done.stdout
    for name in SECRETS:
        assert sandbox.env[name] not in done.stdout + done.stderr


def test_a_wrong_token_fails_that_system_only_and_is_not_printed(sandbox: SandboxRun) -> None:
    wrong = "wrong-token-0123456789"
    done = doctor({**sandbox.env, "SAFETYAMP_TOKEN": wrong})
    assert done.returncode == 1
    line = _line(done.stdout, "SafetyAmp")
    assert line.startswith("FAIL") and "HTTP 401" in line and "SAFETYAMP_TOKEN" in line
    assert _line(done.stdout, "Samsara").startswith("OK")
    assert "not answering: SafetyAmp" in done.stdout
    assert wrong not in done.stdout + done.stderr


def test_a_system_that_does_not_answer_is_named(sandbox: SandboxRun) -> None:
    env = {**sandbox.env, "SAMSARA_API_URL": "http://127.0.0.1:9", "VIEWPOINT_DB_URL": "sqlite:////nonexistent/vista.db"}
    done = doctor(env)
    assert done.returncode == 1
    assert "no answer from http://127.0.0.1:9/fleet/vehicles" in _line(done.stdout, "Samsara")
    assert _line(done.stdout, "Vista").startswith("FAIL") and "bPRDP" in _line(done.stdout, "Vista")
    assert _line(done.stdout, "SafetyAmp").startswith("OK")
    for name in SECRETS:
        assert sandbox.env[name] not in done.stdout + done.stderr


def test_an_unreachable_key_vault_is_named_with_what_to_check(sandbox: SandboxRun) -> None:
    vault_secret = "kv-client-secret-0123456789"
    env = {
        **sandbox.env,
        "AZURE_KEY_VAULT_URL": "https://127.0.0.1:9",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
        "AZURE_CLIENT_SECRET": vault_secret,
        "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9",
    }
    done = doctor(env)
    assert done.returncode == 1
    line = _line(done.stdout, "Key Vault")
    assert line.startswith("FAIL") and "SAFETYAMP-TOKEN" in line and "Key Vault Secrets User" in line
    assert "Key Vault secret SAFETYAMP-TOKEN" in _line(done.stdout, "SafetyAmp")
    assert _line(done.stdout, "sync store").startswith("OK")
    assert vault_secret not in done.stdout + done.stderr
