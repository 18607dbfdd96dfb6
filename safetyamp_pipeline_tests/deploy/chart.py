"""What the official Dagster Helm chart does with helm-values.yaml, in Python, for the tests.

* ``coalesce_values`` merges user values over the chart defaults like Helm does.
* ``chart_validator`` validates against the chart's JSON schema; the schema's references to the
  remote Kubernetes JSON schemas are served as free-form ``{}`` by a local registry.
* ``render_instance_config`` builds the ``dagster.yaml`` that the chart's instance ConfigMap
  renders (templates/configmap-instance.yaml and helpers/instance/*.tpl of the chart, the
  version that carries the top-level ``concurrency`` block).

The stored copies of the chart's templates are older than the stored values/schema pair: they do
not yet render ``concurrency`` or ``run_retries.retry_on_asset_or_op_failure``, which the schema
declares. The rendering below follows the schema (the chart's helpers/instance/_concurrency.tpl
for ``concurrency``); docs/deployment.md asks for a ``helm template`` look before the first install.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_VALUES = REPO_ROOT / "helm-values.yaml"
LOCAL_INSTANCE_YAML = REPO_ROOT / "dagster.yaml"
SHARED_CHART_DIR = REPO_ROOT.parent / "shared" / "dagster-helm"

# Maps whose keys are Kubernetes' or the user's, not the chart's: their contents are not walked.
FREE_FORM_KEYS = frozenset(
    {
        "env",
        "labels",
        "annotations",
        "deploymentLabels",
        "resources",
        "initContainerResources",
        "nodeSelector",
        "affinity",
        "tolerations",
        "podSecurityContext",
        "securityContext",
        "postgresqlParams",
        "volumes",
        "volumeMounts",
        "envSecrets",
        "envConfigMaps",
        "imagePullSecrets",
        "containerConfig",
        "podSpecConfig",
        "podTemplateSpecMetadata",
        "jobSpecConfig",
        "jobMetadata",
        "additionalInstanceConfig",
        "extraManifests",
    }
)


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def coalesce_values(defaults: Any, overrides: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, lists and scalars replace,
    an explicit null deletes the default key."""
    if not isinstance(defaults, Mapping) or not isinstance(overrides, Mapping):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged and isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = coalesce_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def subchart_values(parent_values: Mapping[str, Any], subchart_defaults: Mapping[str, Any]) -> Any:
    """The values Helm hands the dagster-user-deployments subchart: its own defaults, the
    parent's ``dagster-user-deployments`` section, and the parent's ``global`` section."""
    section = dict(parent_values.get("dagster-user-deployments", {}))
    section["global"] = coalesce_values(
        subchart_defaults.get("global", {}), parent_values.get("global", {})
    )
    return coalesce_values(subchart_defaults, section)


# ---------------------------------------------------------------------------------- schema


def _remote_refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield ref
        for value in node.values():
            yield from _remote_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _remote_refs(value)


def free_form_registry(schema: Mapping[str, Any]) -> Registry:
    """A registry where every non-local ``$ref`` of ``schema`` resolves to ``{}`` (anything)."""
    documents: dict[str, dict[str, Any]] = {}
    for ref in _remote_refs(schema):
        uri, _, fragment = ref.partition("#")
        node = documents.setdefault(uri, {})
        for part in [p for p in fragment.split("/") if p]:
            node = node.setdefault(part.replace("~1", "/").replace("~0", "~"), {})
    return Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT202012))
        for uri, doc in documents.items()
    )


def chart_validator(schema_path: Path) -> Draft202012Validator:
    schema = json.loads(schema_path.read_text())
    return Draft202012Validator(schema, registry=free_form_registry(schema))


def schema_errors(validator: Draft202012Validator, values: Any) -> list[str]:
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(values)
    )


def _resolve(schema_root: Mapping[str, Any], node: Any) -> list[Mapping[str, Any]]:
    """The schema alternatives at ``node``: local refs followed, anyOf/oneOf/allOf flattened."""
    if not isinstance(node, Mapping):
        return []
    out: list[Mapping[str, Any]] = []
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema_root
        for part in ref[2:].split("/"):
            target = target[part]
        out.extend(_resolve(schema_root, target))
    out.append(node)
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(combinator, []):
            out.extend(_resolve(schema_root, sub))
    return out


def unknown_keys(
    values: Any,
    defaults: Any,
    schema_root: Mapping[str, Any],
    schema_node: Any = None,
    path: str = "",
) -> list[str]:
    """Key paths of ``values`` that are neither in the chart's defaults nor declared by the
    chart's schema (a typo the schema alone would let through where it allows extra keys)."""
    if schema_node is None:
        schema_node = schema_root
    alternatives = _resolve(schema_root, schema_node)
    found: list[str] = []
    if isinstance(values, Mapping):
        for key, value in values.items():
            key_path = f"{path}.{key}" if path else str(key)
            in_defaults = isinstance(defaults, Mapping) and key in defaults
            sub_schemas = [
                alt["properties"][key]
                for alt in alternatives
                if isinstance(alt.get("properties"), Mapping) and key in alt["properties"]
            ]
            if not in_defaults and not sub_schemas:
                found.append(key_path)
                continue
            if key in FREE_FORM_KEYS:
                continue
            child_defaults = defaults.get(key) if isinstance(defaults, Mapping) else None
            child_schema = {"anyOf": sub_schemas} if sub_schemas else {}
            found.extend(unknown_keys(value, child_defaults, schema_root, child_schema, key_path))
    elif isinstance(values, list):
        item_defaults = defaults[0] if isinstance(defaults, list) and defaults else None
        item_schemas = [alt["items"] for alt in alternatives if isinstance(alt.get("items"), Mapping)]
        for index, item in enumerate(values):
            found.extend(
                unknown_keys(
                    item, item_defaults, schema_root, {"anyOf": item_schemas}, f"{path}[{index}]"
                )
            )
    return found


# ---------------------------------------------------------------------------------- rendering


def _postgres_storage_config(values: Mapping[str, Any]) -> dict[str, Any]:
    pg = values["postgresql"]
    config: dict[str, Any] = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": dict(pg.get("postgresqlParams") or {}),
        }
    }
    if pg.get("postgresqlScheme"):
        config["postgres_db"]["scheme"] = pg["postgresqlScheme"]
    return config


def _names(refs: list[Mapping[str, Any]] | None) -> list[str]:
    return [ref["name"] for ref in refs or [] if "name" in ref]


def render_k8s_run_launcher(
    values: Mapping[str, Any], release_name: str, namespace: str
) -> dict[str, Any]:
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    fullname = release_name if "dagster" in release_name else f"{release_name}-dagster"
    service_account = values.get("global", {}).get("serviceAccountName") or (
        values.get("serviceAccount", {}).get("name") or fullname
    )
    config: dict[str, Any] = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or namespace,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": service_account,
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + _names(launcher.get("envConfigMaps")),
    }
    if launcher.get("kubeconfigFile"):
        config["kubeconfig_file"] = launcher["kubeconfigFile"]
    if values.get("imagePullSecrets"):
        config["image_pull_secrets"] = values["imagePullSecrets"]
    optional = {
        "env_secrets": _names(launcher.get("envSecrets")),
        "env_vars": launcher.get("envVars"),
        "volume_mounts": launcher.get("volumeMounts"),
        "volumes": launcher.get("volumes"),
        "labels": launcher.get("labels"),
        "resources": launcher.get("resources"),
        "scheduler_name": launcher.get("schedulerName"),
        "security_context": launcher.get("securityContext"),
    }
    config.update({key: value for key, value in optional.items() if value})
    if launcher.get("failPodOnRunFailure") is not None:
        config["fail_pod_on_run_failure"] = launcher["failPodOnRunFailure"]
    run_k8s = {
        snake: launcher.get("runK8sConfig", {}).get(camel)
        for camel, snake in (
            ("containerConfig", "container_config"),
            ("podSpecConfig", "pod_spec_config"),
            ("podTemplateSpecMetadata", "pod_template_spec_metadata"),
            ("jobSpecConfig", "job_spec_config"),
            ("jobMetadata", "job_metadata"),
        )
    }
    run_k8s = {key: value for key, value in run_k8s.items() if value}
    if run_k8s:
        config["run_k8s_config"] = run_k8s
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def _run_coordinator(values: Mapping[str, Any]) -> dict[str, Any]:
    queued = values["dagsterDaemon"]["runCoordinator"]["config"].get("queuedRunCoordinator") or {}
    block: dict[str, Any] = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    config: dict[str, Any] = {}
    for camel, snake in (
        ("maxConcurrentRuns", "max_concurrent_runs"),
        ("tagConcurrencyLimits", "tag_concurrency_limits"),
        ("dequeueIntervalSeconds", "dequeue_interval_seconds"),
        ("dequeueUseThreads", "dequeue_use_threads"),
        ("dequeueNumWorkers", "dequeue_num_workers"),
    ):
        if queued.get(camel):
            config[snake] = queued[camel]
    if config:
        block["config"] = config
    return block


class ChartRenderError(ValueError):
    """The chart's templates would ``fail`` with these values."""


def _concurrency(values: Mapping[str, Any]) -> dict[str, Any]:
    concurrency = values.get("concurrency") or {}
    pools = concurrency.get("pools") or {}
    runs = concurrency.get("runs") or {}
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    if coordinator.get("enabled") and coordinator.get("type") == "QueuedRunCoordinator":
        queued = coordinator["config"].get("queuedRunCoordinator") or {}
        if runs.get("maxConcurrentRuns") is not None and queued.get("maxConcurrentRuns") is not None:
            raise ChartRenderError(
                "Cannot set both concurrency.runs.maxConcurrentRuns and "
                "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns"
            )
        if runs.get("tagConcurrencyLimits") and queued.get("tagConcurrencyLimits"):
            raise ChartRenderError(
                "Cannot set both concurrency.runs.tagConcurrencyLimits and "
                "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits"
            )
    block: dict[str, Any] = {}
    pool_block = {
        snake: pools.get(camel)
        for camel, snake in (
            ("defaultLimit", "default_limit"),
            ("granularity", "granularity"),
            ("opGranularityRunBuffer", "op_granularity_run_buffer"),
        )
        if pools.get(camel) is not None
    }
    if pool_block:
        block["pools"] = pool_block
    run_block: dict[str, Any] = {}
    if runs.get("maxConcurrentRuns") is not None:
        run_block["max_concurrent_runs"] = runs["maxConcurrentRuns"]
    if runs.get("tagConcurrencyLimits"):
        run_block["tag_concurrency_limits"] = runs["tagConcurrencyLimits"]
    if run_block:
        block["runs"] = run_block
    return block


def render_instance_config(
    values: Mapping[str, Any], release_name: str = "dagster", namespace: str = "dagster"
) -> dict[str, Any]:
    """The instance ``dagster.yaml`` the chart renders from (defaults-merged) ``values``."""
    storage = _postgres_storage_config(values)
    instance: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": render_k8s_run_launcher(values, release_name, namespace),
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
    }
    daemon = values["dagsterDaemon"]
    if daemon["enabled"] and daemon["runCoordinator"]["enabled"]:
        instance["run_coordinator"] = _run_coordinator(values)

    monitoring = daemon.get("runMonitoring") or {}
    if daemon["enabled"] and monitoring.get("enabled"):
        block: dict[str, Any] = {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        }
        for camel, snake in (
            ("cancelTimeoutSeconds", "cancel_timeout_seconds"),
            ("maxResumeRunAttempts", "max_resume_run_attempts"),
            ("maxRuntimeSeconds", "max_runtime_seconds"),
        ):
            if monitoring.get(camel) is not None:
                block[snake] = monitoring[camel]
        instance["run_monitoring"] = block

    retries = daemon.get("runRetries") or {}
    if daemon["enabled"] and retries.get("enabled"):
        block = {"enabled": True}
        if retries.get("maxRetries"):
            block["max_retries"] = retries["maxRetries"]
        if retries.get("retryOnAssetOrOpFailure") is not None:
            block["retry_on_asset_or_op_failure"] = retries["retryOnAssetOrOpFailure"]
        instance["run_retries"] = block

    for section in ("sensors", "schedules"):
        threads = daemon.get(section) or {}
        if daemon["enabled"] and threads.get("useThreads"):
            instance[section] = {"use_threads": True}
            if threads.get("numWorkers"):
                instance[section]["num_workers"] = threads["numWorkers"]
            if threads.get("numSubmitWorkers"):
                instance[section]["num_submit_workers"] = threads["numSubmitWorkers"]

    instance["telemetry"] = {"enabled": values["telemetry"]["enabled"]}

    retention = values.get("retention") or {}
    if retention.get("enabled"):
        instance["retention"] = {
            snake: {"purge_after_days": retention[camel]["purgeAfterDays"]}
            for camel, snake in (
                ("sensor", "sensor"),
                ("schedule", "schedule"),
                ("autoMaterialize", "auto_materialize"),
            )
            if retention.get(camel)
        }

    if (values.get("concurrency") or {}).get("enabled"):
        concurrency = _concurrency(values)
        if concurrency:
            instance["concurrency"] = concurrency

    instance.update(values.get("additionalInstanceConfig") or {})
    return instance


def pluck(document: Any, dotted: str) -> Any:
    """``a.b[0].c`` from nested dicts/lists; KeyError naming the path when absent."""
    node = document
    for part in dotted.replace("]", "").split("."):
        name, _, index = part.partition("[")
        if name:
            if not isinstance(node, Mapping) or name not in node:
                raise KeyError(dotted)
            node = node[name]
        if index:
            node = node[int(index)]
    return node
