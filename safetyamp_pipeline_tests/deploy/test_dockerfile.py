"""The user-code image definition: lint, shape, and what may reach the build context."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.deploy.dockerfile import (
    DOCKERFILE,
    build_context_files,
    context_copies,
    ignore_patterns,
    is_ignored,
    parse_stages,
)


def _hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is missing: it comes with the dev extra (pip install -e '.[dev]')"
    return path


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the "latest" tag


def test_every_hadolint_ignore_has_a_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above and len(above) > 15, (
                f"Dockerfile line {number + 1}: say why {line.strip()!r} is ignored in the comment above it"
            )


def test_two_stage_slim_bookworm_build_with_the_venv_copied() -> None:
    stages = parse_stages(DOCKERFILE.read_text())
    assert [stage.base for stage in stages] == ["python:3.11-slim-bookworm"] * 2
    builder, runtime = stages
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime.instructions
    assert context_copies(runtime) == [], "the runtime stage takes nothing from the build context"


def test_runtime_has_odbc_driver_18_from_microsofts_signed_repo() -> None:
    runtime = parse_stages(DOCKERFILE.read_text())[1]
    runs = " ".join(rest for keyword, rest in runtime.instructions if keyword == "RUN")
    assert "ACCEPT_EULA=Y" in runs and "msodbcsql18" in runs and "unixodbc" in runs
    assert re.search(r"signed-by=/usr/share/keyrings/\S+\.gpg\] https://packages\.microsoft\.com/debian/12/prod bookworm main", runs)


def test_runtime_runs_as_non_root_in_a_fixed_workdir_and_serves_the_code_location() -> None:
    runtime = parse_stages(DOCKERFILE.read_text())[1]
    values = {keyword: rest for keyword, rest in runtime.instructions}  # last one wins
    assert values["USER"].split(":")[0] not in {"0", "root"}
    assert values["WORKDIR"] == "/opt/dagster/app"
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in values["ENV"]
    assert values["EXPOSE"] == "3030"
    assert values["CMD"] == (
        '["dagster", "api", "grpc", "-m", "safetyamp_pipeline.definitions", "-h", "0.0.0.0", "-p", "3030"]'
    )


def test_nothing_secret_or_local_reaches_the_build_context() -> None:
    files = build_context_files()
    leaked = [
        f
        for f in files
        if f in {"dagster.yaml", ".env", "workspace.yaml"}
        or f.startswith((".venv/", ".git/", ".sandbox/", ".dagster_home/", "safetyamp_pipeline_tests/", "docs/", "benchmarks/"))
        or "__pycache__" in f
    ]
    assert leaked == []
    assert "pyproject.toml" in files
    assert "safetyamp_pipeline/definitions.py" in files


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    patterns = ignore_patterns()
    assert is_ignored(".sandbox/vista.db", patterns)
    assert is_ignored("safetyamp_pipeline/core/__pycache__/x.pyc", patterns)
    assert is_ignored("benchmarks/results/run.json", patterns)
    assert not is_ignored("safetyamp_pipeline/core/settings.py", patterns)
    assert is_ignored("a/b.txt", ["a"]) and not is_ignored("a/b.txt", ["a", "!a/b.txt"])


@pytest.mark.parametrize("forbidden", ["dagster.yaml", ".env", ".sandbox", "vista.db"])
def test_dockerfile_copies_no_instance_config_env_or_sandbox_data(forbidden: str) -> None:
    for stage in parse_stages(DOCKERFILE.read_text()):
        for source, _ in context_copies(stage):
            assert forbidden not in source
