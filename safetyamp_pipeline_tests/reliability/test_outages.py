"""Source outages and broken source answers never harm SafetyAmp data: an Entra outage never erases
or replaces e-mails, a Samsara outage never retires vehicles, and a Vista read returning zero or a
tenth of the employees is stopped by the blocking check before any deactivation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun
from safetyamp_pipeline_tests.reliability.helpers import start, stop

OUTAGE = {"error_rate": 1.0, "error_statuses": [500, 502, 503, 504]}


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    run = start(tmp_path_factory.mktemp("outages"), employees=90, seed=13)
    try:
        first = run.sync()
        assert first.success, first.failure
        yield run
    finally:
        stop(run)


def _writes_of(run: SandboxRun, run_id: str) -> list[dict]:
    return [e for e in run.store.ledger_query(run_id=run_id) if e["status"] in ("ok", "failed")]


def _write_requests(run: SandboxRun) -> dict[str, int]:
    return {route: n for route, n in run.requests()["by_route"].items() if not route.startswith("GET")}


def _admin(run: SandboxRun, service: str, path: str, body: dict) -> None:
    base = run.env[{"samsara": "SAMSARA_API_URL", "graph": "MS_GRAPH_API_URL"}[service]]
    verify = run.env.get("SAFETYAMP_CA_BUNDLE") or True
    requests.post(f"{base}/__sandbox/{path}", json=body, timeout=30, verify=verify).raise_for_status()


def test_entra_outage_fails_the_run_and_leaves_every_email(synced: SandboxRun) -> None:
    run = synced
    users_before = {u["emp_id"]: u["email"] for u in run.state()["users"]}
    assert sum(1 for e in users_before.values() if e) > 10
    run.set_faults("graph", **OUTAGE)
    try:
        run.reset_requests()
        outcome = run.sync(tags={"safetyamp/full_read": "true"})
    finally:
        run.set_faults("graph")
    assert not outcome.success
    assert "entra__users" in (outcome.failure or ""), outcome.failure
    assert "Graph" in outcome.failure or "graph" in outcome.failure.lower()
    assert {u["emp_id"]: u["email"] for u in run.state()["users"]} == users_before
    assert not _write_requests(run), _write_requests(run)
    assert not [e for e in _writes_of(run, outcome.run_id) if e["entity"] == "users"]


def test_entra_answering_an_empty_directory_erases_no_email(synced: SandboxRun) -> None:
    """Graph up but returning no user at all (a broken filter or tenant): e-mails stay."""
    run = synced
    saved = run.state("graph")
    users_before = {u["emp_id"]: u["email"] for u in run.state()["users"]}
    _admin(run, "graph", "state", {"users": []})
    try:
        outcome = run.sync()
    finally:
        _admin(run, "graph", "state", saved)
    users_after = {u["emp_id"]: u["email"] for u in run.state()["users"]}
    erased = sorted(k for k, v in users_before.items() if v and users_after.get(k) != v)
    assert not erased, f"{len(erased)} e-mails erased or replaced after an empty Entra answer: {erased[:5]}"
    assert not outcome.success and "email_count_stable" in (outcome.failure or "") or "entra__users" in (outcome.failure or ""), outcome.failure


def test_samsara_outage_fails_the_run_and_retires_no_vehicle(synced: SandboxRun) -> None:
    run = synced
    assets_before = {a["serial"]: a["status"] for a in run.state()["assets"]}
    run.set_faults("samsara", **OUTAGE)
    try:
        run.reset_requests()
        outcome = run.sync(tags={"safetyamp/full_read": "true"})
    finally:
        run.set_faults("samsara")
    assert not outcome.success
    assert "samsara__vehicles" in (outcome.failure or ""), outcome.failure
    assert {a["serial"]: a["status"] for a in run.state()["assets"]} == assets_before
    assert "PUT /api/assets/{id}" not in _write_requests(run) and "PATCH /api/assets/{id}" not in _write_requests(run)
    # The rest of the sync still ran: the employee part is not held hostage by the fleet.
    assert "users" in outcome.sinks


def test_samsara_answering_no_vehicle_retires_nothing(synced: SandboxRun) -> None:
    run = synced
    saved = run.state("samsara")
    assets_before = {a["serial"]: a["status"] for a in run.state()["assets"]}
    assert sum(1 for s in assets_before.values() if s == 1) >= 10
    _admin(run, "samsara", "state", {"vehicles": [], "drivers": saved.get("drivers", [])})
    try:
        outcome = run.sync()
    finally:
        _admin(run, "samsara", "state", saved)
    assert {a["serial"]: a["status"] for a in run.state()["assets"]} == assets_before
    assert not outcome.success and "assets" in (outcome.failure or ""), outcome.failure


@pytest.mark.parametrize("keep_share", [0.0, 0.1])
def test_vista_losing_employees_stops_before_any_deactivation(synced: SandboxRun, keep_share: float) -> None:
    run = synced
    with run.vista() as db:
        rows = db.execute("SELECT * FROM bPREH").fetchall()
        columns = [c[1] for c in db.execute("PRAGMA table_info(bPREH)")]
        keep = rows[: int(len(rows) * keep_share)]
        db.execute("DELETE FROM bPREH")
        db.executemany(f"INSERT INTO bPREH VALUES ({', '.join('?' for _ in columns)})", keep)
        db.commit()
    active_before = sum(1 for u in run.state()["users"] if u.get("system_access"))
    try:
        run.reset_requests()
        outcome = run.sync()
    finally:
        with run.vista() as db:
            db.execute("DELETE FROM bPREH")
            db.executemany(f"INSERT INTO bPREH VALUES ({', '.join('?' for _ in columns)})", rows)
            db.commit()
    assert not outcome.success
    assert "active_count_stable" in (outcome.failure or "") or "viewpoint__employees" in (outcome.failure or ""), outcome.failure
    assert sum(1 for u in run.state()["users"] if u.get("system_access")) == active_before
    assert not _write_requests(run), _write_requests(run)
    assert not [e for e in _writes_of(run, outcome.run_id) if e["action"] == "deactivate"]


def test_store_back_to_normal_after_outages(synced: SandboxRun, tmp_path: Path) -> None:
    """After the outages above, a normal run has nothing to repair (nothing was harmed)."""
    outcome = synced.sync("safetyamp_reconcile", tags={"dry_run": "true"})
    assert outcome.success, outcome.failure
    assert outcome.total("planned_update") + outcome.total("planned_deactivate") + outcome.total("planned_create") == 0, outcome.sinks
