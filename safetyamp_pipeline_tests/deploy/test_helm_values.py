"""helm-values.yaml against the official chart: schema, known keys, and the settings that the
deployment depends on."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from safetyamp_pipeline_tests.deploy.chart import (
    REPO_ROOT,
    ChartRenderError,
    chart_validator,
    coalesce_values,
    load_yaml,
    render_instance_config,
    schema_errors,
    subchart_values,
    unknown_keys,
)

# Names from DESIGN §6 that hold credentials: they may only come from a Secret.
SECRET_ENV_NAMES = {
    "SAFETYAMP_TOKEN",
    "SAMSARA_API_TOKEN",
    "MS_GRAPH_CLIENT_SECRET",
    "SQL_PASSWORD",
    "SAFETYAMP_STORE_URL",
    "VIEWPOINT_DB_URL",
}
CONTRACT_ENV_NAMES = {
    "SAFETYAMP_ENV", "SAFETYAMP_STORE_URL", "VIEWPOINT_DB_URL", "SQL_SERVER", "SQL_DATABASE",
    "SQL_AUTH_MODE", "SQL_USERNAME", "SQL_PASSWORD", "VIEWPOINT_PR_COMPANY", "VIEWPOINT_JC_COMPANY",
    "SAFETYAMP_API_URL", "SAFETYAMP_TOKEN", "SAFETYAMP_FQDN", "SAMSARA_API_URL", "SAMSARA_API_TOKEN",
    "MS_GRAPH_TENANT_ID", "MS_GRAPH_CLIENT_ID", "MS_GRAPH_CLIENT_SECRET", "MS_GRAPH_AUTHORITY_HOST",
    "MS_GRAPH_API_URL", "AZURE_KEY_VAULT_URL",
}  # fmt: skip


def _readme_env_names() -> set[str]:
    """The project's own settings, as documented in the README's configuration table."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme.read_text()))


def _deployment(values: dict[str, Any]) -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1, "exactly one code location is deployed"
    return deployments[0]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


# ------------------------------------------------------------------------------- the chart


def test_values_validate_against_the_chart_schema(chart_dir: Path, merged_values: dict) -> None:
    validator = chart_validator(chart_dir / "values.schema.json")
    assert schema_errors(validator, merged_values) == []


def test_schema_check_catches_wrong_types_and_unknown_keys(chart_dir: Path, merged_values: dict) -> None:
    validator = chart_validator(chart_dir / "values.schema.json")
    broken = copy.deepcopy(merged_values)
    broken["concurrency"]["pools"]["defaultLimit"] = "one"
    broken["dagsterDaemon"]["runRetry"] = {"enabled": True}
    broken["dagster-user-deployments"]["deployments"][0]["port"] = "3030"
    errors = "\n".join(schema_errors(validator, broken))
    assert "concurrency.pools.defaultLimit" in errors
    assert "runRetry" in errors
    assert "deployments.0.port" in errors


def test_user_deployments_validate_against_the_subchart_schema(chart_dir: Path, helm_values: dict) -> None:
    sub_dir = chart_dir / "user-deployments"
    values = subchart_values(helm_values, load_yaml(sub_dir / "values.yaml"))
    validator = chart_validator(sub_dir / "values.schema.json")
    assert schema_errors(validator, values) == []
    values["deployments"][0]["image"]["pullPolicy"] = "Sometimes"
    assert schema_errors(validator, values), "the subchart schema check must be able to fail"


def _all_defaults(chart_dir: Path, chart_defaults: dict) -> dict:
    """The main chart's defaults with the subchart's own defaults under its section."""
    sub_defaults = load_yaml(chart_dir / "user-deployments" / "values.yaml")
    defaults = copy.deepcopy(chart_defaults)
    defaults["dagster-user-deployments"] = coalesce_values(sub_defaults, defaults["dagster-user-deployments"])
    return defaults


def test_every_key_set_exists_in_the_chart(chart_dir: Path, chart_defaults: dict, helm_values: dict) -> None:
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    assert unknown_keys(helm_values, _all_defaults(chart_dir, chart_defaults), schema) == []


def test_key_walk_reports_a_misspelt_key(chart_dir: Path, chart_defaults: dict, helm_values: dict) -> None:
    # RunRetries allows extra properties in the schema, so only the walk catches this typo.
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    typo = copy.deepcopy(helm_values)
    typo["dagsterDaemon"]["runRetries"]["retryOnAssetOrOpFailures"] = False
    typo["dagster-user-deployments"]["deployments"][0]["dagsterApiGrpcArg"] = []
    assert unknown_keys(typo, _all_defaults(chart_dir, chart_defaults), schema) == [
        "dagster-user-deployments.deployments[0].dagsterApiGrpcArg",
        "dagsterDaemon.runRetries.retryOnAssetOrOpFailures",
    ]


# ------------------------------------------------------------------------------- the code location


def test_code_location_name_and_module_match_the_project(helm_values: dict) -> None:
    deployment = _deployment(helm_values)
    tool = _pyproject()["tool"]["dagster"]
    workspace = load_yaml(REPO_ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    assert deployment["name"] == tool["code_location_name"] == workspace["location_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", tool["module_name"]]
    assert tool["module_name"] == workspace["module_name"]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE {deployment['port']}$", dockerfile, re.MULTILINE)
    assert f'"-m", "{tool["module_name"]}"' in dockerfile
    assert f'"-p", "{deployment["port"]}"' in dockerfile


def test_image_is_pinned_by_an_immutable_tag(helm_values: dict) -> None:
    image = _deployment(helm_values)["image"]
    assert image["repository"].endswith("/safetyamp-pipeline")
    assert isinstance(image["tag"], str) and image["tag"] not in {"", "latest"}
    assert image["pullPolicy"] == "IfNotPresent"


def test_environment_is_production_and_holds_no_secret(helm_values: dict) -> None:
    deployment = _deployment(helm_values)
    env = {item["name"]: item for item in deployment["env"]}
    assert env["SAFETYAMP_ENV"]["value"] == "production"
    assert env["SQL_AUTH_MODE"]["value"] == "managed_identity"
    known = CONTRACT_ENV_NAMES | _readme_env_names()
    assert set(env) <= known, f"undocumented variables (add them to the README table): {set(env) - known}"
    assert not set(env) & SECRET_ENV_NAMES, "credentials come from the Key Vault backed Secret"
    for name in ("SAFETYAMP_API_URL", "SAMSARA_API_URL", "MS_GRAPH_AUTHORITY_HOST", "MS_GRAPH_API_URL"):
        assert re.fullmatch(r"https://[a-z0-9.-]+", env[name]["value"]), f"{name} is an https origin"
    assert deployment["envSecrets"] == [{"name": "safetyamp-pipeline-secrets"}]


def test_run_pods_get_the_code_locations_secrets_identity_and_size(merged_values: dict) -> None:
    deployment = _deployment(merged_values)
    launcher = merged_values["runLauncher"]["config"]["k8sRunLauncher"]
    assert merged_values["runLauncher"]["type"] == "K8sRunLauncher"
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert launcher["envSecrets"] == deployment["envSecrets"]
    assert launcher["labels"]["azure.workload.identity/use"] == "true"
    # The chart copies the deployment's resources into run pods over the launcher's (#13921).
    assert launcher["resources"] == deployment["resources"]
    assert {"requests", "limits"} <= set(launcher["resources"])


def test_workload_identity_is_wired(helm_values: dict) -> None:
    section = helm_values["dagster-user-deployments"]
    annotations = section["serviceAccount"]["annotations"]
    assert re.fullmatch(r"[0-9a-f-]{36}", annotations["azure.workload.identity/client-id"])
    assert section["serviceAccount"]["create"] is True
    assert _deployment(helm_values)["labels"]["azure.workload.identity/use"] == "true"


# ------------------------------------------------------------------------------- instance settings


def test_run_limit_is_set_in_exactly_one_place(merged_values: dict) -> None:
    queued = merged_values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued.get("maxConcurrentRuns") is None
    assert not queued.get("tagConcurrencyLimits")
    assert merged_values["concurrency"]["enabled"] is True
    assert merged_values["concurrency"]["runs"]["maxConcurrentRuns"] > 0
    both = copy.deepcopy(merged_values)
    both["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] = 4
    with pytest.raises(ChartRenderError, match="Cannot set both"):
        render_instance_config(both)


def test_pool_retries_and_monitoring(merged_values: dict) -> None:
    assert merged_values["concurrency"]["pools"]["defaultLimit"] == 1
    retries = merged_values["dagsterDaemon"]["runRetries"]
    assert retries == {"enabled": True, "maxRetries": 2, "retryOnAssetOrOpFailure": False}
    monitoring = merged_values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["freeSlotsAfterRunEndSeconds"] > 0


def test_external_postgres_with_tls_and_an_existing_secret(merged_values: dict) -> None:
    postgres = merged_values["postgresql"]
    assert postgres["enabled"] is False
    assert postgres["postgresqlHost"]
    assert postgres["postgresqlParams"]["sslmode"] == "require"
    assert merged_values["generatePostgresqlPasswordSecret"] is False
    assert merged_values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"


def test_ui_is_internal_and_has_a_read_only_twin(merged_values: dict) -> None:
    webserver = merged_values["dagsterWebserver"]
    assert webserver["service"]["type"] == "ClusterIP"
    assert webserver["enableReadOnly"] is True
    assert merged_values["ingress"]["enabled"] is False
    assert merged_values["telemetry"]["enabled"] is False
