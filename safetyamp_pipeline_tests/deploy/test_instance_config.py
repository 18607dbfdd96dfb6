"""The two instance configs: the repo's dagster.yaml (local/dev) and the one the chart renders
from helm-values.yaml (production). Both must load in Dagster and say the same thing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster import DagsterInstance

from safetyamp_pipeline_tests.deploy.paths import LOCAL_INSTANCE_YAML, load_yaml

# Sections that both files set; everything in them must be identical.
SHARED_SECTIONS = ("concurrency", "run_retries", "run_monitoring", "retention", "telemetry")


@pytest.fixture
def local_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def test_local_dagster_yaml_loads_with_sqlite_storage_under_dagster_home(local_instance) -> None:
    from dagster._core.storage.runs.sqlite import SqliteRunStorage

    home = Path(local_instance.root_directory)
    assert isinstance(local_instance.run_storage, SqliteRunStorage)
    assert list(home.rglob("runs.db")), "the SQLite run database lives under DAGSTER_HOME"
    assert local_instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    assert local_instance.run_retries_enabled is True
    assert local_instance.run_retries_max_retries == 2
    assert local_instance.run_retries_retry_on_asset_or_op_failure is False
    assert local_instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert local_instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    assert local_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits == [
        {"key": "safetyamp/lane", "value": "sync", "limit": 1}
    ]
    assert local_instance.managed_python_loggers == ["safetyamp_pipeline.clients"]
    assert local_instance.run_monitoring_enabled is True
    assert local_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
    assert local_instance.telemetry_enabled is False


def test_local_pool_limit_applies_to_safetyamp_api(local_instance) -> None:
    @dg.op(pool="safetyamp_api")
    def write_to_safetyamp() -> int:
        return 1

    @dg.job
    def tiny_sink() -> None:
        write_to_safetyamp()

    assert tiny_sink.execute_in_process(instance=local_instance).success
    info = local_instance.event_log_storage.get_concurrency_info("safetyamp_api")
    assert info.slot_count == 1


def test_helm_and_local_instance_agree(rendered_instance: dict[str, Any]) -> None:
    local = load_yaml(LOCAL_INSTANCE_YAML)
    for section in SHARED_SECTIONS:
        assert rendered_instance[section] == local[section], section
    assert rendered_instance["run_coordinator"]["class"] == local["run_coordinator"]["class"]
    managed = "managed_python_loggers"
    assert rendered_instance["python_logs"][managed] == local["python_logs"][managed]
    # Local keeps the default SQLite storage and run launcher; production renders its own.
    assert not {"storage", "run_storage", "event_log_storage", "run_launcher"} & set(local)


def test_rendered_instance_passes_dagsters_schema(rendered_instance: dict, tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered_instance))
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["concurrency"]["pools"]["default_limit"] == 1

    broken = {**rendered_instance, "run_retries": {"enabled": True, "max_retry": 2}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(dg.DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_rendered_k8s_run_launcher_matches_dagster_k8s_schema(
    rendered_instance: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    for name, value in {
        "DAGSTER_HOME": "/opt/dagster/dagster_home",
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
    }.items():
        monkeypatch.setenv(name, value)
    block = rendered_instance["run_launcher"]
    assert (block["module"], block["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), block["config"])
    assert result.success, result.errors
    assert result.value["env_secrets"] == ["safetyamp-pipeline-secrets"]
    assert result.value["resources"]["limits"]["memory"]
    assert result.value["labels"] == {"azure.workload.identity/use": "true"}

    bad = {**block["config"], "env_secret": ["typo"]}
    assert not process_config(K8sRunLauncher.config_type(), bad).success


@pytest.mark.postgres
def test_helm_instance_runs_a_job_and_keeps_it_in_postgres(helm_instance, postgres_database: str) -> None:
    from dagster_postgres import PostgresRunStorage

    assert isinstance(helm_instance.run_storage, PostgresRunStorage)
    assert helm_instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert helm_instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
    assert helm_instance.run_retries_max_retries == 2
    assert helm_instance.run_retries_retry_on_asset_or_op_failure is False
    assert helm_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300

    @dg.asset(pool="safetyamp_api")
    def pooled_write() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"written": 3})

    result = dg.materialize([pooled_write], instance=helm_instance, tags={"dry_run": "true"})
    assert result.success
    run_id = result.run_id

    # A second instance object (another pod, in production) reads the same run and events.
    reader = DagsterInstance.from_config(helm_instance.root_directory)
    try:
        run = reader.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dry_run"] == "true"
        event = reader.get_latest_materialization_event(dg.AssetKey("pooled_write"))
        assert event is not None and event.run_id == run_id
        assert event.asset_materialization.metadata["written"].value == 3
        assert reader.event_log_storage.get_concurrency_info("safetyamp_api").slot_count == 1
    finally:
        reader.dispose()

    with psycopg2.connect(postgres_database) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cursor.fetchone() == ("SUCCESS",)
        cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cursor.fetchone()[0] > 5
    conn.close()
