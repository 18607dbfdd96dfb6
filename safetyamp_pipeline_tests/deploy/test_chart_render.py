"""The official Dagster chart, rendered by a real helm with helm-values.yaml and each overlay:
what Kubernetes and Dagster will be handed on the first install."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from safetyamp_pipeline_tests import helm_tool
from safetyamp_pipeline_tests.deploy.conftest import instance_yaml, values_files
from safetyamp_pipeline_tests.deploy.paths import OVERLAYS, REPO_ROOT, load_yaml

ENVIRONMENTS = [None, *OVERLAYS]
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Kinds whose name is also a DNS label (a hostname), not only a subdomain.
LABEL_KINDS = {"Service"}
LOCATION = "safetyamp_pipeline"


def _env_id(env: str | None) -> str:
    return env or "base"


@pytest.fixture(scope="module", params=ENVIRONMENTS, ids=_env_id)
def env_render(request: pytest.FixtureRequest, helm: Path) -> tuple[str | None, list[dict[str, Any]]]:
    return request.param, helm_tool.render(values_files(request.param))


def invalid_names(objects: list[dict[str, Any]]) -> list[str]:
    """Every Kubernetes name in the render that the API server would reject."""
    bad: list[str] = []

    def check(what: str, name: str, label: bool) -> None:
        pattern, limit = (DNS_LABEL, 63) if label else (DNS_SUBDOMAIN, 253)
        if not (pattern.fullmatch(name) and len(name) <= limit):
            bad.append(f"{what}: {name!r}")

    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        check(kind, name, kind in LABEL_KINDS)
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            check(f"{kind} {name} container", container["name"], True)
        if kind == "ConfigMap" and "workspace.yaml" in (obj.get("data") or {}):
            for entry in yaml.safe_load(obj["data"]["workspace.yaml"])["load_from"]:
                check("workspace gRPC host", entry["grpc_server"]["host"], True)
    return bad


def _deployment(objects: list[dict[str, Any]], part: str) -> dict[str, Any]:
    (found,) = helm_tool.find(objects, "Deployment", part)
    return found


def _user_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return _deployment(objects, "user-deployments")


def _container_context(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _user_deployment(objects)["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    return json.loads(env["DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT"]["value"])["k8s"]


# ------------------------------------------------------------------------------- render + lint


def test_renders_and_lints(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    env, objects = env_render
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    helm_tool.lint(values_files(env))


def test_every_object_name_is_dns_1123(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    assert invalid_names(env_render[1]) == []


def test_the_name_check_rejects_an_underscore(helm: Path) -> None:
    broken = helm_tool.render(
        values_files(None), "--set", "dagster-user-deployments.deployments[0].name=safetyamp_pipeline"
    )
    found = "\n".join(invalid_names(broken))
    assert "Service: 'safetyamp_pipeline'" in found
    assert "Deployment: 'dagster-dagster-user-deployments-safetyamp_pipeline'" in found


def test_lint_fails_on_a_value_the_chart_schema_refuses(helm: Path) -> None:
    with pytest.raises(helm_tool.HelmError, match="bogusKey"):
        helm_tool.lint(values_files(None), "--set", "dagsterWebserver.bogusKey=1")


# ------------------------------------------------------------------------------- workspace


def test_workspace_keeps_the_code_location_name(rendered: list[dict[str, Any]]) -> None:
    (configmap,) = helm_tool.find(rendered, "ConfigMap", "workspace")
    (entry,) = yaml.safe_load(configmap["data"]["workspace.yaml"])["load_from"]
    server = entry["grpc_server"]
    (service,) = [s for s in helm_tool.find(rendered, "Service") if s["metadata"]["name"] == server["host"]]
    assert service["spec"]["ports"][0]["port"] == server["port"]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    local = load_yaml(REPO_ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    assert server["location_name"] == LOCATION
    assert pyproject["tool"]["dagster"]["code_location_name"] == LOCATION
    assert pyproject["tool"]["dg"]["project"]["code_location_name"] == LOCATION
    assert local["location_name"] == LOCATION


# ------------------------------------------------------------------------------- instance


def test_instance_configmap(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    instance = instance_yaml(env_render[1])
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert launcher["config"]["env_secrets"] == ["safetyamp-pipeline-secrets"]
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    assert instance["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "safetyamp/lane", "value": "sync", "limit": 1}
    ]
    assert "config" not in instance["run_coordinator"], "run limits live in concurrency > runs only"
    monitoring = instance["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["free_slots_after_run_end_seconds"] > 0
    logs = instance["compute_logs"]
    assert (logs["module"], logs["class"]) == (
        "dagster_azure.blob.compute_log_manager",
        "AzureBlobComputeLogManager",
    )
    assert logs["config"]["storage_account"] and logs["config"]["container"]
    assert "default_azure_credential" in logs["config"], "workload identity, no key or SAS"
    assert not {"secret_key", "access_key_or_sas_token", "secret_credential"} & set(logs["config"])
    assert instance["python_logs"]["managed_python_loggers"] == ["safetyamp_pipeline.clients"]


def _validate_instance(instance: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster's own checks of an instance dagster.yaml, and of each pluggable class's config."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer

    for name in ("DAGSTER_PG_PASSWORD", "DAGSTER_HOME"):
        monkeypatch.setenv(name, "x")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(home))
    for section in ("run_launcher", "compute_logs", "run_coordinator", "run_storage", "event_log_storage", "schedule_storage"):
        block = config[section]
        # ConfigurableClassData maps legacy module paths (dagster.core -> dagster._core) as the
        # instance does when it loads the class.
        data = ConfigurableClassData(block["module"], block["class"], "{}")
        klass: Any = class_from_code_pointer(data.module_name, data.class_name)
        result = process_config(klass.config_type(), block.get("config") or {})
        if not result.success:
            raise dg.DagsterInvalidConfigError(f"{section}: {block['class']}", result.errors, block)


def test_rendered_instance_passes_dagsters_validation(
    env_render: tuple[str | None, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _validate_instance(instance_yaml(env_render[1]), tmp_path, monkeypatch)


def test_dagster_validation_refuses_a_run_limit_in_two_places(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chart's own defaults (dequeue threads on) make it render max_concurrent_runs in the
    # run coordinator: Dagster 1.13 refuses that beside `concurrency > runs`.
    objects = helm_tool.render(
        values_files(None),
        "--set", "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.dequeueUseThreads=true",
    )
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurrent_runs"):
        _validate_instance(instance_yaml(objects), tmp_path, monkeypatch)


def test_python_logs_config_builds_the_json_handler(rendered_instance: dict[str, Any]) -> None:
    import logging.config

    from safetyamp_pipeline.logs import JsonFormatter

    handler_config = rendered_instance["python_logs"]["dagster_handler_config"]

    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, **handler_config,
         "loggers": {"h4_probe": {"handlers": list(handler_config["handlers"])}}}
    )
    (handler,) = logging.getLogger("h4_probe").handlers
    assert isinstance(handler.formatter, JsonFormatter)


# ------------------------------------------------------------------------------- pods


def test_user_deployment(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    pod = _user_deployment(env_render[1])["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert re.fullmatch(r"[a-z0-9.]+/safetyamp-pipeline:[\w.-]+", container["image"])
    assert not container["image"].endswith(":latest")
    assert container["args"][:3] == ["dagster", "api", "grpc"]
    assert container["args"][-2:] == ["-m", "safetyamp_pipeline.definitions"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SAFETYAMP_ENV"] == "production"
    assert env["SQL_AUTH_MODE"] == "sql_auth"
    assert env["SAFETYAMP_LOG_FORMAT"] == "json"
    assert {"secretRef": {"name": "safetyamp-pipeline-secrets"}} in container["envFrom"]
    health = ["dagster", "api", "grpc-health-check", "-p", "3030"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["exec"]["command"] == health, probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "cold start may be slow"
    assert pod["serviceAccountName"] == "safetyamp-pipeline"
    labels = _user_deployment(env_render[1])["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"


def _hardened(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    problems = []
    pod_ctx, ctx = pod.get("securityContext") or {}, container.get("securityContext") or {}
    name = container["name"]
    if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
        problems.append(f"{name}: may run as root")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: privilege escalation allowed")
    if "ALL" not in (ctx.get("capabilities") or {}).get("drop", []):
        problems.append(f"{name}: capabilities not dropped")
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(f"{name}: seccomp {seccomp}")
    resources = container.get("resources") or {}
    if not (resources.get("requests", {}).get("memory") and resources.get("requests", {}).get("cpu")):
        problems.append(f"{name}: no cpu/memory requests")
    if not resources.get("limits", {}).get("memory"):
        problems.append(f"{name}: no memory limit")
    return problems


def test_every_pod_is_hardened_and_sized(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    problems = []
    deployments = helm_tool.find(env_render[1], "Deployment")
    assert {d["metadata"]["name"].rsplit("-", 1)[-1] for d in deployments} >= {"daemon", "webserver", "pipeline"}
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            problems += [f"{deployment['metadata']['name']} {p}" for p in _hardened(pod, container)]
    assert problems == []


def test_webserver_and_daemon_run_dagsters_image_at_the_projects_version(rendered: list[dict[str, Any]]) -> None:
    pins = dict(
        dep.split("==") for dep in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if dep.startswith("dagster==")
    )
    for part in ("daemon", "dagster-webserver"):
        for deployment in helm_tool.find(rendered, "Deployment", part):
            (main,) = deployment["spec"]["template"]["spec"]["containers"]
            assert main["image"] == f"docker.io/dagster/dagster-celery-k8s:{pins['dagster']}", deployment["metadata"]["name"]
    (webserver,) = [d for d in helm_tool.find(rendered, "Deployment", "webserver") if "read-only" not in d["metadata"]["name"]]
    (main,) = webserver["spec"]["template"]["spec"]["containers"]
    assert main["ports"][0]["containerPort"] >= 1024, "non-root without capabilities cannot bind below 1024"
    assert {"name": "DAGSTER_WEBSERVER_LOG_FORMAT", "value": "json"} in main["env"]


def test_run_pods_are_hardened_and_sized(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    """What a run pod gets: the launcher's container settings and the code location's container
    context (the chart copies it into every run it launches)."""
    objects = env_render[1]
    launcher = instance_yaml(objects)["run_launcher"]["config"]
    context = _container_context(objects)
    pod = {"securityContext": context["run_k8s_config"]["pod_spec_config"]["security_context"]}
    container = {
        "name": "run",
        "securityContext": launcher["security_context"],
        "resources": context.get("resources") or launcher["resources"],
    }
    assert _hardened(pod, container) == []
    assert pod["securityContext"]["runAsUser"] == 10001
    assert context["service_account_name"] == "safetyamp-pipeline"
    assert context["env_secrets"] == ["safetyamp-pipeline-secrets"]
    assert context["labels"]["azure.workload.identity/use"] == "true"
    assert context["resources"] == launcher["resources"]


def test_code_server_mounts_the_instance_for_doctor(rendered: list[dict[str, Any]]) -> None:
    """`kubectl exec ... safetyamp-pipeline doctor --instance-dir /opt/dagster/instance` needs the
    instance ConfigMap the chart renders, mounted read-only in the code server."""
    pod = _user_deployment(rendered)["spec"]["template"]["spec"]
    (instance_cm,) = helm_tool.find(rendered, "ConfigMap", "-instance")
    (volume,) = [v for v in pod["volumes"] if v.get("configMap", {}).get("name") == instance_cm["metadata"]["name"]]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == "/opt/dagster/instance" and mount["readOnly"] is True


def test_webserver_has_the_workload_identity_to_read_compute_logs(env_render: tuple[str | None, list[dict[str, Any]]]) -> None:
    objects = env_render[1]
    accounts = {obj["metadata"]["name"]: obj for obj in helm_tool.find(objects, "ServiceAccount")}
    for deployment in helm_tool.find(objects, "Deployment", "webserver"):
        template = deployment["spec"]["template"]
        assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        account = accounts[template["spec"]["serviceAccountName"]]
        client_id = account["metadata"]["annotations"]["azure.workload.identity/client-id"]
        assert re.fullmatch(r"[0-9a-f-]{36}", client_id)
    code_account = accounts[_user_deployment(objects)["spec"]["template"]["spec"]["serviceAccountName"]]
    assert code_account["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_id


def test_each_overlay_names_its_own_identity_database_and_log_storage(helm: Path) -> None:
    seen: dict[str, set[str]] = {"client": set(), "postgres": set(), "storage": set()}
    for env in OVERLAYS:
        objects = helm_tool.render(values_files(env))
        instance = instance_yaml(objects)
        overlay = load_yaml(OVERLAYS[env])
        client_id = overlay["serviceAccount"]["annotations"]["azure.workload.identity/client-id"]
        accounts = {obj["metadata"]["name"]: obj for obj in helm_tool.find(objects, "ServiceAccount")}
        assert {a["metadata"]["annotations"]["azure.workload.identity/client-id"] for a in accounts.values()} == {client_id}
        seen["client"].add(client_id)
        seen["postgres"].add(instance["run_storage"]["config"]["postgres_db"]["hostname"])
        seen["storage"].add(instance["compute_logs"]["config"]["storage_account"])
        assert env in instance["compute_logs"]["config"]["prefix"]
    assert all(len(values) == len(OVERLAYS) for values in seen.values()), seen
