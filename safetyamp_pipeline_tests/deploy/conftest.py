"""Fixtures for the deployment checks: the chart's reference files, a scratch PostgreSQL
database, and a Dagster instance configured the way the Helm chart would configure it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from safetyamp_pipeline_tests.deploy.chart import (
    HELM_VALUES,
    SHARED_CHART_DIR,
    coalesce_values,
    load_yaml,
    render_instance_config,
)

PG_ADMIN_URL = os.environ.get("SAFETYAMP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    if not (SHARED_CHART_DIR / "values.schema.json").is_file():
        pytest.skip(f"the Dagster chart reference files are not beside the repo ({SHARED_CHART_DIR})")
    return SHARED_CHART_DIR


@pytest.fixture(scope="session")
def helm_values() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


@pytest.fixture(scope="session")
def chart_defaults(chart_dir: Path) -> dict[str, Any]:
    return load_yaml(chart_dir / "values.yaml")


@pytest.fixture(scope="session")
def merged_values(chart_defaults: dict[str, Any], helm_values: dict[str, Any]) -> dict[str, Any]:
    """What the chart's templates see: the chart defaults with helm-values.yaml over them."""
    return coalesce_values(chart_defaults, helm_values)


@pytest.fixture(scope="session")
def rendered_instance(merged_values: dict[str, Any]) -> dict[str, Any]:
    return render_instance_config(merged_values)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the local PostgreSQL server; dropped afterwards.
    Yields its SQLAlchemy/libpq URL."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server reachable at {PG_ADMIN_URL}: {exc}".strip())
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
    K8sRunLauncher (which needs a cluster) replaced by the default launcher."""
    config = dict(rendered)
    storage = {"postgres_url": postgres_url}
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        config[key] = {**config[key], "config": storage}
    config.pop("run_launcher")
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
