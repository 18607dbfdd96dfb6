"""The deployment files the tests read, and small helpers to read them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_VALUES = REPO_ROOT / "helm-values.yaml"
LOCAL_INSTANCE_YAML = REPO_ROOT / "dagster.yaml"
OVERLAYS = {env: REPO_ROOT / "deploy" / f"values-{env}.yaml" for env in ("dev", "staging", "prod")}


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


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
