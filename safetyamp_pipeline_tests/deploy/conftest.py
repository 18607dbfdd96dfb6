"""Fixtures for the deployment checks: the real chart rendered with helm, a scratch PostgreSQL
database, and a Dagster instance configured the way the Helm chart configures it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from safetyamp_pipeline_tests import helm_tool
from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, OVERLAYS

PG_ADMIN_URL = os.environ.get("SAFETYAMP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def helm() -> Path:
    """The real helm 3 binary; the only reason to skip is that it cannot be fetched."""
    if not (helm_tool.CHART_DIR / "Chart.yaml").is_file():
        pytest.skip(f"the official Dagster chart is not beside the repo ({helm_tool.CHART_DIR})")
    binary = helm_tool.helm_binary()
    if binary is None:
        pytest.skip(helm_tool.helm_unavailable_reason())
    return binary


def values_files(env: str | None) -> list[Path]:
    """helm-values.yaml, then the environment's overlay (as `helm upgrade -f ... -f ...`)."""
    return [HELM_VALUES] if env is None else [HELM_VALUES, OVERLAYS[env]]


@pytest.fixture(scope="session")
def rendered(helm: Path) -> list[dict[str, Any]]:
    """Every object the real chart renders from helm-values.yaml."""
    return helm_tool.render(values_files(None))


def instance_yaml(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [
        obj for obj in objects
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-instance")
    ]
    return yaml.safe_load(configmap["data"]["dagster.yaml"])


@pytest.fixture(scope="session")
def rendered_instance(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """The instance dagster.yaml of the chart's ConfigMap, as the pods mount it."""
    return instance_yaml(rendered)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the local PostgreSQL server; dropped afterwards.
    Yields its SQLAlchemy/libpq URL."""
    import psycopg2

    from safetyamp_pipeline_tests.store.conftest import require_pg

    require_pg()  # skips locally without a server; fails under SAFETYAMP_REQUIRE_PG=1 (CI)
    admin = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
    admin.autocommit = True
    name = f"dagster_test_{secrets.token_hex(4)}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def instance_config_for_local_run(
    rendered: dict[str, Any], postgres_url: str
) -> dict[str, Any]:
    """The chart-rendered instance config, pointed at a local database, with the
    K8sRunLauncher (which needs a cluster) and the Azure Blob compute logs (which need a
    storage account) replaced by Dagster's defaults."""
    config = dict(rendered)
    storage = {"postgres_url": postgres_url}
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        config[key] = {**config[key], "config": storage}
    config.pop("run_launcher")
    config.pop("compute_logs")
    return config


@pytest.fixture
def helm_instance(
    rendered_instance: dict[str, Any], postgres_database: str, tmp_path: Path
) -> Iterator[Any]:
    """A DagsterInstance with the instance config the chart renders from helm-values.yaml
    (PostgreSQL storage, queue, pools, retries, monitoring), on a scratch database.
    Tests that run real jobs against production-shaped settings start from this."""
    from dagster import DagsterInstance

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = instance_config_for_local_run(rendered_instance, postgres_database)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    instance = DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()
