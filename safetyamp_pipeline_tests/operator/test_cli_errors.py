"""Exit codes and one-line errors that need no sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from safetyamp_pipeline import cli
from safetyamp_pipeline.store import SyncStore

VENV_BIN = Path(sys.executable).parent


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str) -> None:
    assert err.startswith("safetyamp-pipeline: error: ")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_unreachable_store_is_a_configuration_error_with_the_password_masked(capsys):
    code, out, err = run_cli(capsys, "ledger", "--store-url", "postgresql://operator:Secr3tPass@127.0.0.1:1/sync")
    assert code == 2
    assert out == ""
    assert_one_line(err)
    assert "Secr3tPass" not in err
    assert "postgresql://operator:***@127.0.0.1:1/sync" in err


def test_invalid_store_url_is_reported_masked(capsys):
    code, _, err = run_cli(capsys, "failures", "--store-url", "not a url at all://x:Secr3tPass@")
    assert code == 2
    assert_one_line(err)
    assert "Secr3tPass" not in err


def test_a_missing_sqlite_store_is_not_created_silently(capsys, tmp_path: Path):
    path = tmp_path / "nowhere" / "store.db"
    code, _, err = run_cli(capsys, "explain", "employee", "123", "--store-url", f"sqlite:///{path}")
    assert code == 2
    assert_one_line(err)
    assert "does not exist" in err
    assert not path.exists()


def test_store_defaults_to_dagster_home_like_the_assets(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SAFETYAMP_STORE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    SyncStore(f"sqlite:///{tmp_path / 'safetyamp_store.db'}").close()
    code, out, err = run_cli(capsys, "failures")
    assert (code, err) == (0, "")
    assert out.strip() == "No open failures."


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["explain", "spaceship", "1"],
        ["failures", "retry"],
        ["failures", "retry", "123", "--all"],
        ["failures", "dismiss"],
        ["failures", "--entity", "nonsense"],
        ["ledger", "--format", "xml"],
        ["ledger", "--limit", "-3"],
        ["ledger", "--since", "last tuesday"],
    ],
)
def test_usage_errors_exit_2_on_one_line(capsys, tmp_path: Path, args: list[str]):
    store = tmp_path / "store.db"
    SyncStore(f"sqlite:///{store}").close()
    code, _, err = run_cli(capsys, *args, "--store-url", f"sqlite:///{store}")
    assert code == 2
    assert_one_line(err)


def test_installed_console_script_prints_help():
    result = subprocess.run([str(VENV_BIN / "safetyamp-pipeline"), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("explain", "failures", "ledger"):
        assert command in result.stdout


def test_explain_on_a_store_nothing_was_synced_into_says_so(capsys, tmp_path: Path):
    store = tmp_path / "store.db"
    SyncStore(f"sqlite:///{store}").close()
    code, out, err = run_cli(capsys, "explain", "employee", "00012", "--store-url", f"sqlite:///{store}")
    assert (code, out) == (1, "")
    assert_one_line(err)
    assert "no employee '00012'" in err and "desired/users has no stored value" in err
