"""The sink engine against a hand-kept SafetyAmp tenant (issue 15.6-15.8): records made by hand,
duplicates left by the old service, assets Samsara does not know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path) as run:
        yield run


def _writes(outcome) -> int:
    return outcome.total("created") + outcome.total("updated") + outcome.total("deactivated")


def test_adopting_a_hand_made_site_leaves_no_stale_mirror_entry(synced: SandboxRun) -> None:
    run = synced
    cluster_id = next(s for s in run.state()["sites"] if s.get("ext_id"))["cluster_id"]
    with run.vista() as db:
        (contract,) = db.execute(
            "SELECT c.Contract FROM bJCCM c JOIN bPRDP d ON d.PRDept = c.Department AND d.PRCo = 1 WHERE c.JCCo = 1 LIMIT 1"
        ).fetchone()
        db.execute(
            "INSERT INTO bJCJM (JCCo, Job, Description, Contract, JobStatus, ShipAddress, ShipCity, ShipState, ShipZip) "
            "VALUES (1, '99902.', 'Legacy Yard', ?, 1, '2 Levee Rd', 'Baton Rouge', 'LA', '70801')",
            (contract,),
        )
    # The old service made the site by hand, without the job number.
    answer = run.safetyamp("POST", "/api/sites", json={"name": "99902. - Legacy Yard", "cluster_id": cluster_id})
    assert answer.status_code == 201, answer.text
    hand_made = answer.json()["data"]["id"]

    adopting = run.sync("safetyamp_reconcile")
    assert adopting.success, adopting.failure
    assert adopting.sinks["sites"]["updated"] == 1 and adopting.sinks["sites"]["created"] == 0
    mirror = run.store.mirror_records("sites")
    assert mirror["99902."]["id"] == hand_made
    assert f"id:{hand_made}" not in mirror  # the record is mirrored once, under its job number
    assert [s["id"] for s in run.state()["sites"] if s.get("ext_id") == "99902."] == [hand_made]

    again = run.sync("safetyamp_reconcile")
    assert again.success, again.failure
    assert again.sinks["sites"]["drift"] == 0  # the full read finds the mirror exact
    assert _writes(again) == 0


def _vehicle_serial(vehicle: dict) -> str | None:
    serial = vehicle.get("serial") or (vehicle.get("gateway") or {}).get("serial")
    return str(serial).strip().casefold() if serial else None


def test_only_assets_the_sync_owns_are_retired(synced: SandboxRun) -> None:
    from safetyamp_pipeline.core.settings import SyncSettings

    run = synced
    assets = {str(a.get("serial") or "").casefold(): a for a in run.state()["assets"]}
    vehicles = run.state("samsara")["vehicles"]
    gone = next(v for v in vehicles if _vehicle_serial(v) in assets)
    synced_asset = assets[_vehicle_serial(gone) or ""]
    # Someone adds a rental truck by hand: the vehicle type, the yard, a serial Samsara never lists.
    rental = run.safetyamp("POST", "/api/assets", json={
        "name": "Rental pickup", "serial": "RENTAL-7731", "asset_type_id": synced_asset["asset_type_id"],
        "site_id": synced_asset["site_id"], "status": synced_asset["status"],
    })
    assert rental.status_code == 201, rental.text
    rental_id = rental.json()["data"]["id"]
    # And a vehicle the sync created leaves Samsara.
    run._admin("samsara", f"vehicles/{gone['id']}", method="DELETE")

    for job in ("safetyamp_reconcile", "safetyamp_sync", "safetyamp_reconcile"):
        outcome = run.sync(job)
        assert outcome.success, outcome.failure
    by_id = {a["id"]: a for a in run.state()["assets"]}
    assert by_id[rental_id]["status"] == synced_asset["status"]  # never retired
    assert by_id[synced_asset["id"]]["status"] == SyncSettings().vehicle_retired_status


def test_two_users_with_one_emp_id_give_no_flip_flop_and_no_writes(synced: SandboxRun) -> None:
    from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient
    from safetyamp_pipeline.core.models import record_from_row
    from safetyamp_pipeline.core.settings import SyncSettings
    from safetyamp_pipeline.sync.reconcile import Reconciler, SinkOptions

    run = synced
    original = next(u for u in run.state()["users"] if u.get("emp_id") and u.get("system_access"))
    # The old service left a second user with the same employee number (a later id).
    twin = run.safetyamp("POST", "/api/users", json={
        "emp_id": original["emp_id"], "first_name": "Twin", "last_name": original["last_name"],
        "email": f"twin.{original['emp_id']}@example.test",
    })
    assert twin.status_code == 201, twin.text
    twin_id = twin.json()["data"]["id"]
    before = {u["id"]: u for u in run.state()["users"]}

    for job in ("safetyamp_reconcile", "safetyamp_sync", "safetyamp_reconcile"):
        outcome = run.sync(job)
        assert outcome.success, outcome.failure
        assert outcome.sinks["users"]["updated"] + outcome.sinks["users"]["created"] == 0, outcome.sinks["users"]
    assert outcome.sinks["users"]["drift"] == 0
    after = {u["id"]: u for u in run.state()["users"]}
    assert after[original["id"]] == before[original["id"]] and after[twin_id] == before[twin_id]

    # The sink's report names the duplicate (the data behind the duplicates asset check).
    env = run.env
    with SafetyAmpClient(env["SAFETYAMP_API_URL"], env["SAFETYAMP_TOKEN"], env["SAFETYAMP_FQDN"]) as client:
        client.session.verify = env.get("SAFETYAMP_CA_BUNDLE") or True
        desired = [record_from_row(r) for r in run.store.load_asset_value("desired/users")]
        report = Reconciler(client, run.store, SyncSettings(), SinkOptions(run_id="check", dry_run=True)).reconcile(
            "users", desired, ["sites", "site_clusters", "user_titles", "roles"]
        )
    assert report.duplicates == [{"key": original["emp_id"], "kept_id": original["id"], "duplicate_ids": str(twin_id)}]
    assert report.planned_update == report.planned_create == 0
