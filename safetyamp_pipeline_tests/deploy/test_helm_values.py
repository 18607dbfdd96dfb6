"""helm-values.yaml: the settings that the deployment depends on, read from the values file
(the render of the real chart is checked in test_chart_render.py, the schema in
test_chart_schema.py)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, REPO_ROOT, load_yaml

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


def _documented_env_names() -> set[str]:
    """The project's own settings, as documented in the README's configuration table or in the
    deployment guide."""
    names: set[str] = set()
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "deployment.md"):
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", doc.read_text()))
    return names


@pytest.fixture(scope="module")
def helm_values() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


def _deployment(values: dict[str, Any]) -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1, "exactly one code location is deployed"
    return deployments[0]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


# ------------------------------------------------------------------------------- the code location


def test_code_location_name_and_module_match_the_project(helm_values: dict) -> None:
    deployment = _deployment(helm_values)
    tool = _pyproject()["tool"]["dagster"]
    workspace = load_yaml(REPO_ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    # The Kubernetes name is DNS-1123; the workspace maps its host to the code location name.
    (server,) = helm_values["dagsterWebserver"]["workspace"]["servers"]
    assert server == {"host": deployment["name"], "port": deployment["port"], "name": tool["code_location_name"]}
    assert tool["code_location_name"] == workspace["location_name"]
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
    # The old cluster's mode (legacy-service.md §1.1); managed_identity is documented as the switch.
    assert env["SQL_AUTH_MODE"]["value"] == "sql_auth"
    known = CONTRACT_ENV_NAMES | _documented_env_names()
    assert set(env) <= known, f"undocumented variables: {set(env) - known}"
    assert not set(env) & SECRET_ENV_NAMES, "credentials come from the Key Vault backed Secret"
    for name in ("SAFETYAMP_API_URL", "SAMSARA_API_URL", "MS_GRAPH_AUTHORITY_HOST", "MS_GRAPH_API_URL"):
        assert re.fullmatch(r"https://[a-z0-9.-]+", env[name]["value"]), f"{name} is an https origin"
    assert deployment["envSecrets"] == [{"name": "safetyamp-pipeline-secrets"}]


def test_run_pods_get_the_code_locations_secrets_identity_and_size(helm_values: dict) -> None:
    deployment = _deployment(helm_values)
    launcher = helm_values["runLauncher"]["config"]["k8sRunLauncher"]
    assert helm_values["runLauncher"]["type"] == "K8sRunLauncher"
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


def test_run_limits_are_set_in_concurrency_only(helm_values: dict) -> None:
    queued = helm_values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not any(queued.values()), "any key here renders run_coordinator.config (see test_chart_render)"
    assert helm_values["concurrency"]["enabled"] is True
    assert helm_values["concurrency"]["runs"]["maxConcurrentRuns"] > 0
    assert {"key": "safetyamp/lane", "value": "sync", "limit": 1} in helm_values["concurrency"]["runs"]["tagConcurrencyLimits"]


def test_pool_retries_and_monitoring(helm_values: dict) -> None:
    assert helm_values["concurrency"]["pools"]["defaultLimit"] == 1
    retries = helm_values["dagsterDaemon"]["runRetries"]
    assert retries == {"enabled": True, "maxRetries": 2, "retryOnAssetOrOpFailure": False}
    monitoring = helm_values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["freeSlotsAfterRunEndSeconds"] > 0


def test_external_postgres_with_tls_and_an_existing_secret(helm_values: dict) -> None:
    postgres = helm_values["postgresql"]
    assert postgres["enabled"] is False
    assert postgres["postgresqlHost"]
    assert postgres["postgresqlParams"]["sslmode"] == "require"
    assert helm_values["generatePostgresqlPasswordSecret"] is False
    assert helm_values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"


def test_ui_is_internal_and_has_a_read_only_twin(helm_values: dict) -> None:
    webserver = helm_values["dagsterWebserver"]
    assert webserver["service"]["type"] == "ClusterIP"
    assert webserver["enableReadOnly"] is True
    assert "ingress" not in helm_values or helm_values["ingress"].get("enabled") is False
    assert helm_values["telemetry"]["enabled"] is False
