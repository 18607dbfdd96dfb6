"""helm-values.yaml and every overlay against the chart's own values.schema.json (jsonschema,
offline), plus a walk for misspelt keys where the schema lets extra keys through.

The chart's schemas ``$ref`` remote Kubernetes definitions (Probe, Container, Affinity, ...),
which cannot be fetched offline. Only those refs are stubbed: each resolves to ``{}``
(anything), so the Kubernetes objects inside the values are not checked here (the render and
lint tests look at them); every key, type and enum of the chart's own schema stays in force.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, OVERLAYS, load_yaml
from safetyamp_pipeline_tests.helm_tool import CHART_DIR

SUBCHART_DIR = CHART_DIR / "charts" / "dagster-user-deployments"
# Maps whose keys are Kubernetes' or the user's, not the chart's: the walk does not enter them.
FREE_FORM_KEYS = frozenset(
    {
        "env", "labels", "annotations", "deploymentLabels", "resources", "initContainerResources",
        "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
        "postgresqlParams", "volumes", "volumeMounts", "envSecrets", "envConfigMaps",
        "imagePullSecrets", "containerConfig", "podSpecConfig", "podTemplateSpecMetadata",
        "jobSpecConfig", "jobMetadata", "additionalInstanceConfig", "extraManifests",
        "defaultAzureCredential", "dagsterHandlerConfig", "readinessProbe", "livenessProbe",
        "startupProbe",
    }
)  # fmt: skip


def coalesce(defaults: Any, overrides: Any) -> Any:
    """Helm's merge of values: maps merge, lists and scalars replace, null deletes."""
    if not isinstance(defaults, Mapping) or not isinstance(overrides, Mapping):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


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


def validator(schema_path: Path) -> Draft202012Validator:
    """The chart schema with each remote ref served as ``{}`` by a local registry."""
    schema = json.loads(schema_path.read_text())
    documents: dict[str, dict[str, Any]] = {}
    for ref in _remote_refs(schema):
        uri, _, fragment = ref.partition("#")
        node = documents.setdefault(uri, {})
        for part in [p for p in fragment.split("/") if p]:
            node = node.setdefault(part.replace("~1", "/").replace("~0", "~"), {})
    registry = Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT202012)) for uri, doc in documents.items()
    )
    return Draft202012Validator(schema, registry=registry)


def errors(check: Draft202012Validator, values: Any) -> list[str]:
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in check.iter_errors(values)
    )


def user_values(files: list[Path]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        values = coalesce(values, load_yaml(path))
    return values


def merged_values(files: list[Path]) -> dict[str, Any]:
    return coalesce(load_yaml(CHART_DIR / "values.yaml"), user_values(files))


def subchart_values(files: list[Path]) -> dict[str, Any]:
    parent = user_values(files)
    section = dict(parent.get("dagster-user-deployments", {}))
    section["global"] = parent.get("global", {})
    return coalesce(load_yaml(SUBCHART_DIR / "values.yaml"), section)


def _alternatives(root: Mapping[str, Any], node: Any) -> list[Mapping[str, Any]]:
    if not isinstance(node, Mapping):
        return []
    out: list[Mapping[str, Any]] = []
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        out.extend(_alternatives(root, target))
    out.append(node)
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(combinator, []):
            out.extend(_alternatives(root, sub))
    return out


def unknown_keys(values: Any, defaults: Any, root: Mapping[str, Any], node: Any = None, path: str = "") -> list[str]:
    """Key paths neither in the chart's defaults nor declared by its schema."""
    alternatives = _alternatives(root, root if node is None else node)
    found: list[str] = []
    if isinstance(values, Mapping):
        for key, value in values.items():
            key_path = f"{path}.{key}" if path else str(key)
            subs = [a["properties"][key] for a in alternatives if key in (a.get("properties") or {})]
            if not (isinstance(defaults, Mapping) and key in defaults) and not subs:
                found.append(key_path)
            elif key not in FREE_FORM_KEYS:
                child = defaults.get(key) if isinstance(defaults, Mapping) else None
                found += unknown_keys(value, child, root, {"anyOf": subs}, key_path)
    elif isinstance(values, list):
        item_defaults = defaults[0] if isinstance(defaults, list) and defaults else None
        items = [a["items"] for a in alternatives if isinstance(a.get("items"), Mapping)]
        for index, item in enumerate(values):
            found += unknown_keys(item, item_defaults, root, {"anyOf": items}, f"{path}[{index}]")
    return found


def _all_defaults() -> dict[str, Any]:
    defaults = load_yaml(CHART_DIR / "values.yaml")
    section = "dagster-user-deployments"
    defaults[section] = coalesce(load_yaml(SUBCHART_DIR / "values.yaml"), defaults[section])
    return defaults


ENVIRONMENTS = [None, *OVERLAYS]


def _files(env: str | None) -> list[Path]:
    return [HELM_VALUES] if env is None else [HELM_VALUES, OVERLAYS[env]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_values_validate_against_the_chart_schema(env: str | None) -> None:
    assert errors(validator(CHART_DIR / "values.schema.json"), merged_values(_files(env))) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_user_deployments_validate_against_the_subchart_schema(env: str | None) -> None:
    assert errors(validator(SUBCHART_DIR / "values.schema.json"), subchart_values(_files(env))) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_key_set_exists_in_the_chart(env: str | None) -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert unknown_keys(user_values(_files(env)), _all_defaults(), schema) == []


def test_schema_check_catches_wrong_types_and_unknown_keys() -> None:
    broken = merged_values([HELM_VALUES])
    broken["concurrency"]["pools"]["defaultLimit"] = "one"
    broken["dagsterDaemon"]["runRetry"] = {"enabled": True}
    broken["dagster-user-deployments"]["deployments"][0]["port"] = "3030"
    found = "\n".join(errors(validator(CHART_DIR / "values.schema.json"), broken))
    assert "concurrency.pools.defaultLimit" in found
    assert "runRetry" in found
    assert "deployments.0.port" in found
    sub = subchart_values([HELM_VALUES])
    sub["deployments"][0]["image"]["pullPolicy"] = "Sometimes"
    assert errors(validator(SUBCHART_DIR / "values.schema.json"), sub)


def test_key_walk_reports_a_misspelt_key() -> None:
    # RunRetries allows extra properties in the schema, so only the walk catches this typo.
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    typo = user_values([HELM_VALUES])
    typo["dagsterDaemon"]["runRetries"]["retryOnAssetOrOpFailures"] = False
    typo["dagster-user-deployments"]["deployments"][0]["dagsterApiGrpcArg"] = []
    assert unknown_keys(typo, _all_defaults(), schema) == [
        "dagster-user-deployments.deployments[0].dagsterApiGrpcArg",
        "dagsterDaemon.runRetries.retryOnAssetOrOpFailures",
    ]
