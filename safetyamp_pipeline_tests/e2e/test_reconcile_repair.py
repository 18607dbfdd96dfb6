"""End-to-end (issue 16.3): ``safetyamp_reconcile`` repairs what people changed by hand in
SafetyAmp — a site renamed, an asset renamed and retired, a site deleted — while the ordinary
hourly sync (fresh mirror) makes no call at all. The SafetyAmp API has no DELETE, so the deletion is
made the way an admin tool would: in the emulator's state, with the sandbox restarted on the same
ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path_factory.mktemp("reconcile")) as sandbox_run:
        yield sandbox_run


def _by(run: SandboxRun, entity: str, field: str) -> dict[str, dict]:
    return {str(r[field]): r for r in run.state()[entity] if r.get(field)}


def _restart_without_site(run: SandboxRun, site_id: int) -> None:
    """Stop the sandbox, delete one site from the SafetyAmp state file, start it on the same ports."""
    from safetyamp_pipeline.sandbox.runtime import start_sandbox

    ports = {
        service: urlsplit(run.env[name]).port
        for service, name in (("safetyamp", "SAFETYAMP_API_URL"), ("samsara", "SAMSARA_API_URL"), ("graph", "MS_GRAPH_API_URL"))
    }
    run.sandbox.stop()
    state_file = run.directory / "safetyamp.json"
    state = json.loads(state_file.read_text())
    before = len(state["sites"])
    state["sites"] = [s for s in state["sites"] if s["id"] != site_id]
    assert len(state["sites"]) == before - 1
    state_file.write_text(json.dumps(state))
    run.sandbox = start_sandbox(run.directory, rate_limit=None, ports=ports)
    assert run.sandbox.env["SAFETYAMP_API_URL"] == run.env["SAFETYAMP_API_URL"]


def test_reconcile_repairs_a_renamed_site_a_tampered_asset_and_a_deleted_site(run: SandboxRun) -> None:
    sites = _by(run, "sites", "ext_id")
    state = run.state()
    used_sites = {u.get("home_site_id") for u in state["users"]} | {a.get("site_id") for a in state["assets"]}
    renamed, deleted = [s for s in sites.values() if s["id"] not in used_sites][:2]
    assets = _by(run, "assets", "serial")
    asset = next(a for a in assets.values() if a.get("status") == 1)

    response = run.safetyamp("PUT", f"/api/sites/{renamed['id']}", json={**renamed, "name": "Renamed By Hand"})
    assert response.status_code == 200, response.text
    response = run.safetyamp("PUT", f"/api/assets/{asset['id']}", json={**asset, "name": "Tampered", "status": 0})
    assert response.status_code == 200, response.text
    _restart_without_site(run, deleted["id"])

    run.reset_requests()
    hourly = run.sync()
    assert hourly.success, hourly.failure
    assert run.requests("safetyamp")["total"] == 0  # fresh mirror: the hourly run cannot see it

    outcome = run.sync("safetyamp_reconcile")

    assert outcome.success, outcome.failure
    assert outcome.sinks["sites"]["drift"] >= 2 and outcome.sinks["assets"]["drift"] >= 1
    assert (outcome.sinks["sites"]["updated"], outcome.sinks["sites"]["created"]) == (1, 1)
    assert outcome.sinks["assets"]["updated"] == 1
    repaired = _by(run, "sites", "ext_id")
    assert repaired[renamed["ext_id"]]["name"] == renamed["name"]
    assert repaired[deleted["ext_id"]]["name"] == deleted["name"]
    assert repaired[deleted["ext_id"]]["cluster_id"] == deleted["cluster_id"]
    fixed = _by(run, "assets", "serial")[asset["serial"]]
    assert (fixed["name"], fixed["status"]) == (asset["name"], 1)

    run.reset_requests()
    again = run.sync("safetyamp_reconcile")
    assert again.success, again.failure
    assert again.total("created") + again.total("updated") + again.total("deactivated") == 0
    assert not [r for r in run.requests("safetyamp")["by_route"] if not r.startswith("GET")]
