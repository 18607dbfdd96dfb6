"""docs/deployment.md matches what the chart renders and what the code reads: the kubectl
targets exist, the ExternalSecret delivers every secret under the names the code and Key Vault
use, and the documented Vista options are the ones the code reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from safetyamp_pipeline.clients.secrets import key_vault_name
from safetyamp_pipeline_tests import helm_tool
from safetyamp_pipeline_tests.deploy.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "deployment.md"
SECRETS_READ = {
    "SAFETYAMP_TOKEN", "SAMSARA_API_TOKEN", "MS_GRAPH_TENANT_ID", "MS_GRAPH_CLIENT_ID",
    "MS_GRAPH_CLIENT_SECRET", "SQL_SERVER", "SQL_DATABASE", "SQL_USERNAME", "SQL_PASSWORD",
    "SAFETYAMP_STORE_URL",
}  # fmt: skip


def _yaml_documents(markdown: str) -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", markdown, re.DOTALL)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if isinstance(doc, dict)]


def test_kubectl_targets_are_objects_the_chart_renders(rendered: list[dict[str, Any]]) -> None:
    text = DOC.read_text()
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in rendered}
    deployments = set(re.findall(r"-n dagster deploy/([a-z0-9-]+)", text))
    services = re.findall(r"svc/([a-z0-9-]+) (\d+):(\d+)", text)
    assert deployments and services
    assert {("Deployment", name) for name in deployments} <= names
    for name, _local, remote in services:
        (service,) = [obj for obj in rendered if obj["kind"] == "Service" and obj["metadata"]["name"] == name]
        assert int(remote) in {port["port"] for port in service["spec"]["ports"]}
    for label in re.findall(r"-l deployment=([a-z0-9_-]+)", text) + re.findall(r"\{deployment: ([a-z0-9_-]+)\}", text):
        assert label == "safetyamp-pipeline", label


def test_doctor_instance_dir_is_the_mounted_instance(rendered: list[dict[str, Any]]) -> None:
    (instance_dir,) = set(re.findall(r"doctor --instance-dir (\S+)", DOC.read_text()))
    (user,) = helm_tool.find(rendered, "Deployment", "user-deployments")
    mounts = user["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert instance_dir in {mount["mountPath"] for mount in mounts}


def test_external_secret_delivers_every_secret_under_the_key_vault_names() -> None:
    documents = _yaml_documents(DOC.read_text())
    (secret,) = [d for d in documents if d.get("kind") == "ExternalSecret" and d["metadata"]["name"] == "safetyamp-pipeline-secrets"]
    delivered = {item["secretKey"]: item["remoteRef"]["key"] for item in secret["spec"]["data"]}
    assert set(delivered) == SECRETS_READ
    for env_name, vault_name in delivered.items():
        if env_name != "SAFETYAMP_STORE_URL":  # new in this project, not read from the vault by the code
            assert vault_name == key_vault_name(env_name), env_name


def test_documented_vista_options_are_the_ones_the_code_reads() -> None:
    code = (REPO_ROOT / "safetyamp_pipeline" / "clients" / "vista_connect.py").read_text()
    read = set(re.findall(r'"(VISTA_SQL_[A-Z_]+)"', code))
    documented = set(re.findall(r"\| `(VISTA_SQL_[A-Z_]+)` \|", DOC.read_text()))
    assert read and read == documented


def test_overlays_named_in_the_doc_exist() -> None:
    named = set(re.findall(r"deploy/(values-[a-z]+\.yaml)", DOC.read_text()))
    assert {"values-dev.yaml", "values-staging.yaml", "values-prod.yaml"} <= named
    assert all((REPO_ROOT / "deploy" / name).is_file() for name in named if name != "values-<env>.yaml")
    assert Path(REPO_ROOT / "requirements.lock").is_file()
