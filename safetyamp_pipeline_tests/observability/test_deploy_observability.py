"""deploy/values-observability.yaml through the real `helm template`, and the Grafana dashboard:
the exporter, its Service, ServiceMonitor and PrometheusRule render, and every dashboard and
alert expression names metrics (and labels) the exporter serves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from safetyamp_pipeline.operator.metrics import METRICS
from safetyamp_pipeline_tests import helm_tool
from safetyamp_pipeline_tests.observability.promql import selectors

ROOT = Path(__file__).resolve().parents[2]
VALUES = [ROOT / "helm-values.yaml", ROOT / "deploy" / "values-observability.yaml"]
DASHBOARD = ROOT / "deploy" / "grafana" / "safetyamp-sync.json"
# Prometheus' own series the rules may use besides the exporter's.
PROMETHEUS_SERIES = {"up": {"job", "instance"}}
REQUIRED_ALERTS = {
    "SafetyAmpUserSyncStale",
    "SafetyAmpOpenFailuresRising",
    "SafetyAmpScheduleStopped",
    "SafetyAmpExporterCannotReadStore",
}
# The chart copy in /work/shared lacks the template that renders `extraManifests` (its SOURCE.md:
# "no stored template renders the extraManifests value"). The released chart renders each entry
# with `tpl (toYaml .) $`; this stand-in does the same so the values are tested as the chart uses them.
EXTRA_MANIFESTS_TEMPLATE = """{{- range .Values.extraManifests }}
---
{{ tpl (toYaml .) $ }}
{{- end }}
"""


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if helm_tool.helm_binary() is None:
        pytest.skip(helm_tool.helm_unavailable_reason())
    copy = tmp_path_factory.mktemp("chart") / "dagster"
    shutil.copytree(helm_tool.CHART_DIR, copy)
    template = copy / "templates" / "extra-manifests.yaml"
    if not template.exists():
        template.write_text(EXTRA_MANIFESTS_TEMPLATE)
    yield copy


def _render(chart: Path, *extra: str) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(helm_tool, "CHART_DIR", chart)
        return helm_tool.render(VALUES, *extra)


@pytest.fixture(scope="module")
def rendered(chart: Path) -> list[dict[str, Any]]:
    return _render(chart, "--set", "dagster-user-deployments.deployments[0].image.tag=9.9.9")


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o.get("kind") == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def test_the_exporter_runs_the_code_locations_image_hardened_on_the_charts_instance(rendered):
    deployment = _one(rendered, "Deployment", "safetyamp-metrics")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "myregistry.azurecr.io/safetyamp-pipeline:9.9.9"
    assert container["command"] == ["safetyamp-pipeline", "metrics", "serve", "--port", "9090"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]

    # The instance config and database password are the chart's own objects.
    env = {e["name"]: e for e in container["env"]}
    config_map = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    _one(rendered, "ConfigMap", config_map)
    assert "postgres" in _one(rendered, "ConfigMap", config_map)["data"]["dagster.yaml"]
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "dagster-postgresql-secret"
    assert env["SAFETYAMP_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "safetyamp-pipeline-secrets", "key": "SAFETYAMP_STORE_URL"
    }
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert f"{env['DAGSTER_HOME']['value']}/dagster.yaml" in mounts
    assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_the_exporter_judges_default_automation_status_as_the_code_location_does(rendered):
    def env(deployment: dict[str, Any]) -> dict[str, str | None]:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        values = {e["name"]: e.get("value") for e in container.get("env", [])}
        return {name: values.get(name) for name in ("SAFETYAMP_ENV", "SAFETYAMP_AUTOMATION_DEFAULT")}

    code = next(
        o for o in rendered
        if o["kind"] == "Deployment" and o["metadata"]["name"] != "safetyamp-metrics"
        and any("grpc" in " ".join(c.get("args", []) + c.get("command", [])) for c in o["spec"]["template"]["spec"]["containers"])
    )
    assert env(_one(rendered, "Deployment", "safetyamp-metrics")) == env(code)


def test_the_instance_evaluates_the_sinks_freshness_policies(rendered):
    instance = yaml.safe_load(_one(rendered, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    assert instance["freshness"] == {"enabled": True}


def test_service_and_service_monitor_reach_the_exporter_pod(rendered):
    pod_labels = _one(rendered, "Deployment", "safetyamp-metrics")["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", "safetyamp-metrics")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["name"]) == (9090, "metrics", "metrics")

    monitor = _one(rendered, "ServiceMonitor", "safetyamp-metrics")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")


def _check_expression(expr: str, where: str) -> None:
    found = selectors(expr)
    assert found, f"{where}: no metric in {expr!r}"
    for name, labels in found:
        known = METRICS[name].labels if name in METRICS else PROMETHEUS_SERIES.get(name)
        assert known is not None, f"{where}: {name!r} is not a metric the exporter serves"
        assert labels <= set(known), f"{where}: {name} has no label(s) {sorted(labels - set(known))}"


def test_every_alert_rule_uses_served_metrics_and_the_required_alerts_exist(rendered):
    rule = _one(rendered, "PrometheusRule", "safetyamp-pipeline")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for r in rules:
        _check_expression(r["expr"], r["alert"])
        assert r["labels"]["severity"] in ("warning", "critical")
        # Prometheus' own templates survive the chart's tpl.
        assert "{{ \"{{\" }}" not in json.dumps(r["annotations"])
    stale = next(r for r in rules if r["alert"] == "SafetyAmpUserSyncStale")
    assert "7200" in stale["expr"] and 'entity="users"' in stale["expr"]
    assert "{{ $value | humanizeDuration }}" in stale["annotations"]["description"]


def test_every_dashboard_expression_uses_served_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [(panel["title"], t["expr"]) for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(targets) >= 8
    for title, expr in targets:
        _check_expression(expr, f"panel {title!r}")
    used = {name for _, expr in targets for name, _ in selectors(expr)}
    # The metrics the issue names are all on the dashboard.
    assert {
        "safetyamp_sink_last_success_timestamp_seconds", "safetyamp_sink_records", "safetyamp_open_failures",
        "safetyamp_ledger_writes_total", "safetyamp_api_requests", "safetyamp_rate_limit_wait_seconds",
        "safetyamp_job_last_run_status", "safetyamp_automation_running", "safetyamp_exporter_store_up",
    } <= used


def test_without_the_observability_values_nothing_of_it_renders(chart):
    objects = _render(chart)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(helm_tool, "CHART_DIR", chart)
        base = helm_tool.render(VALUES[:1])
    assert any(o["metadata"]["name"] == "safetyamp-metrics" for o in objects)
    assert not any(o["metadata"]["name"] == "safetyamp-metrics" for o in base)
    assert not any(o["kind"] in ("ServiceMonitor", "PrometheusRule") for o in base)


def test_the_selector_reader_sees_through_functions_groupings_and_strings():
    assert selectors('sum by (entity) (increase(safetyamp_ledger_writes_total{status="ok"}[1h]))') == [
        ("safetyamp_ledger_writes_total", {"status"})
    ]
    assert selectors('time() - max(x{a="b{c}"}) > 7200 or absent(up{job="y"})') == [("x", {"a"}), ("up", {"job"})]
    assert selectors("safetyamp_open_failures offset 1h") == [("safetyamp_open_failures", set())]
