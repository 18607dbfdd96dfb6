"""docs/deployment.md's "Values set in both places" table is true: every row's value is what
helm-values.yaml, dagster.yaml and the project files hold, and every dagster.yaml setting is in it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from safetyamp_pipeline_tests.deploy.paths import (
    HELM_VALUES,
    LOCAL_INSTANCE_YAML,
    REPO_ROOT,
    load_yaml,
    pluck,
)

DOC = REPO_ROOT / "docs" / "deployment.md"
HEADING = "## Values set in both places"
PROJECT_FILES = {
    "pyproject.toml": lambda: tomllib.loads((REPO_ROOT / "pyproject.toml").read_text()),
    "workspace.yaml": lambda: load_yaml(REPO_ROOT / "workspace.yaml"),
}


@dataclass(frozen=True)
class Row:
    setting: str
    helm_path: str | None
    local_path: str | None
    project_refs: list[tuple[str, str]]
    value: Any


def _code(cell: str) -> str | None:
    found = re.findall(r"`([^`]+)`", cell)
    return found[0] if found else None


def parse_mapping_table(markdown: str) -> list[Row]:
    section = markdown.split(HEADING, 1)[1]
    rows: list[Row] = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "Setting":
            continue
        setting, helm_cell, local_cell, project_cell, value_cell = cells
        refs = re.findall(r"`(pyproject\.toml|workspace\.yaml): ([^`]+)`", project_cell)
        rows.append(
            Row(
                setting=setting,
                helm_path=_code(helm_cell),
                local_path=_code(local_cell),
                project_refs=refs,
                value=yaml.safe_load(_code(value_cell) or ""),
            )
        )
    return rows


def _leaf_paths(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaf_paths(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    parsed = parse_mapping_table(DOC.read_text())
    assert len(parsed) > 10, "the mapping table was not found or is empty"
    return parsed


def test_every_row_matches_the_files(rows: list[Row]) -> None:
    helm = load_yaml(HELM_VALUES)
    local = load_yaml(LOCAL_INSTANCE_YAML)
    project = {name: load() for name, load in PROJECT_FILES.items()}
    mismatches = []
    for row in rows:
        assert row.helm_path, f"{row.setting}: every row names its helm-values.yaml key"
        sources = {f"helm-values.yaml {row.helm_path}": pluck(helm, row.helm_path)}
        if row.local_path:
            sources[f"dagster.yaml {row.local_path}"] = pluck(local, row.local_path)
        for file_name, path in row.project_refs:
            sources[f"{file_name} {path}"] = pluck(project[file_name], path)
        mismatches += [
            f"{row.setting}: {where} is {found!r}, the table says {row.value!r}"
            for where, found in sources.items()
            if found != row.value
        ]
    assert mismatches == []


def test_every_local_instance_setting_is_in_the_table(rows: list[Row]) -> None:
    local = load_yaml(LOCAL_INSTANCE_YAML)
    listed = {row.local_path for row in rows if row.local_path}
    # run_coordinator.module is the import path of the class, not a setting.
    missing = set(_leaf_paths(local)) - listed - {"run_coordinator.module"}
    assert missing == set()


def test_the_table_check_notices_a_wrong_value() -> None:
    doc = DOC.read_text().replace(
        "| `concurrency.runs.max_concurrent_runs` | — | `4` |",
        "| `concurrency.runs.max_concurrent_runs` | — | `5` |",
    )
    changed = {row.setting: row.value for row in parse_mapping_table(doc)}
    assert changed["max runs in progress"] == 5
    helm = load_yaml(HELM_VALUES)
    assert pluck(helm, "concurrency.runs.maxConcurrentRuns") != changed["max runs in progress"]
