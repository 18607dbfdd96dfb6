"""End-to-end: the whole sync on the sandbox (real emulators over HTTP, real SQLite store)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg

from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline.core.refs import natural_key
from safetyamp_pipeline.sync.calendar import PAYROLL_WEEKS, current_week_key
from safetyamp_pipeline_tests.e2e.checks import check_failed
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

ENTITIES = ("site_clusters", "sites", "user_titles", "users", "assets")
DESIRED_ASSET = {"site_clusters": "site_clusters", "sites": "sites", "user_titles": "titles", "users": "users", "assets": "assets"}


def _by_key(run: SandboxRun, entity: str) -> dict[str, dict]:
    records = run.state()[entity]
    keys = Counter(natural_key(entity, r) for r in records)
    duplicates = [k for k, n in keys.items() if n > 1 and k is not None]
    assert not duplicates, f"duplicate {entity} in SafetyAmp: {duplicates[:5]}"
    return {natural_key(entity, r): r for r in records}


def _desired(run: SandboxRun, entity: str) -> list:
    return [record_from_row(r) for r in run.store.load_asset_value(f"desired/{DESIRED_ASSET[entity]}")]


def test_first_sync_creates_everything_the_data_allows(synced_once) -> None:
    run, outcome = synced_once
    assert outcome.success, outcome.failure
    clusters = _by_key(run, "site_clusters")
    sites = _by_key(run, "sites")
    users = _by_key(run, "users")
    cluster_ids = {r["id"]: key for key, r in clusters.items()}

    for entity in ENTITIES:
        state = _by_key(run, entity)
        desired = _desired(run, entity)
        assert desired, entity
        sendable = [d for d in desired if not d.rejected and not d.deactivate]
        missing = [d.key for d in sendable if natural_key(entity, {**d.fields, "name": d.fields.get("name", d.key)}) not in state and d.key not in state]
        rejected = [d for d in desired if d.rejected]
        assert all(d.rejected.strip() for d in rejected)
        # Sends are complete except the records the sink rejected at plan time (reported in metadata).
        assert len(missing) <= outcome.sinks[entity]["rejected_before_send"], (entity, missing[:5])

    # Parents: each department cluster hangs under its region, each site under its department.
    for cluster in _desired(run, "site_clusters"):
        parent = cluster.refs.get("parent")
        if parent and not cluster.rejected:
            assert cluster_ids[clusters[cluster.key]["parent_cluster_id"]].casefold() == parent.casefold()
    for site in _desired(run, "sites"):
        if not site.rejected and site.key in sites:
            assert cluster_ids[sites[site.key]["cluster_id"]].casefold() == site.refs["cluster"].casefold()

    # Users: titles and home sites as desired (the job's site, else the region's office site).
    site_by_id = {r["id"]: key for key, r in sites.items()}
    all_sites = {r["id"]: r for r in run.state()["sites"]}
    region_of_cluster = {r["id"]: key for key, r in clusters.items()}
    checked_job = checked_office = checked_title = 0
    for user in _desired(run, "users"):
        if user.rejected or user.key not in users:
            continue
        record = users[user.key]
        job, region = user.refs.get("home_site"), user.refs.get("home_site_region_office")
        if job and job in sites:
            assert site_by_id[record["home_site_id"]] == job
            checked_job += 1
        else:
            office = all_sites[record["home_site_id"]]
            assert office["ext_id"] is None
            assert region_of_cluster[office["cluster_id"]].casefold() == (region or "").casefold()
            checked_office += 1
        if user.refs.get("current_title"):
            assert record["current_title"]["name"].casefold() == " ".join(user.refs["current_title"].split()).casefold()
            checked_title += 1
    assert checked_job > 20 and checked_office > 0 and checked_title > 20

    # Rejected employees are reported with a reason and not created.
    rejected_users = [u for u in _desired(run, "users") if u.rejected]
    assert rejected_users and not any(u.key in users for u in rejected_users)

    # Driver links: assets whose vehicle has a linked driver point at that employee's user.
    assets = _by_key(run, "assets")
    user_by_id = {r["id"]: key for key, r in users.items()}
    linked = 0
    for asset in _desired(run, "assets"):
        driver = asset.refs.get("current_user")
        if driver and driver in users and asset.key in assets:
            assert user_by_id.get(assets[asset.key]["current_user_id"]) == driver
            linked += 1
    assert linked > 0


def test_second_sync_makes_zero_safetyamp_requests(synced_once) -> None:
    run, first = synced_once
    assert first.success, first.failure
    run.reset_requests()
    second = run.sync()
    assert second.success, second.failure
    counts = run.requests("safetyamp")
    assert counts["total"] == 0, counts
    assert second.total("api_calls") == 0
    assert second.total("created") + second.total("updated") + second.total("deactivated") == 0
    # The vehicle list is read, but no driver is looked up again (cached in the store).
    samsara = run.requests("samsara")
    assert all(not route.startswith("GET /fleet/drivers") for route in samsara["by_route"]), samsara


def _employees_with_site(run: SandboxRun, n: int) -> list[int]:
    users = _by_key(run, "users")
    with run.vista() as db:
        rows = db.execute("SELECT Employee FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL ORDER BY Employee").fetchall()
    return [e for (e,) in rows if str(e) in users and users[str(e)].get("system_access")][:n]


def test_five_vista_changes_send_exactly_the_expected_patches(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    assert run.sync().success
    users = _by_key(run, "users")
    titles = sorted({r["name"] for r in run.state()["user_titles"]})
    a, b, c, d, e = _employees_with_site(run, 5)
    new_title = next(t for t in titles if users[str(c)].get("current_title", {}) is None or t != users[str(c)]["current_title"]["name"])
    with run.vista() as db:
        db.execute("UPDATE bPREH SET FirstName = 'Zebulon' WHERE PRCo = 1 AND Employee = ?", (a,))
        db.execute("UPDATE bPREH SET CellPhone = '(504) 555-0187', Phone = '(504) 555-0187' WHERE PRCo = 1 AND Employee = ?", (b,))
        db.execute("UPDATE bPREH SET udEmpTitle = ? WHERE PRCo = 1 AND Employee = ?", (new_title, c))
        other_dept = db.execute("SELECT PRDept FROM bPREH WHERE Employee != ? AND PRDept IS NOT NULL LIMIT 1", (d,)).fetchone()[0]
        db.execute("UPDATE bPREH SET PRDept = ? WHERE PRCo = 1 AND Employee = ?", (other_dept, d))
        db.execute("UPDATE bPREH SET TermDate = '2026-01-15 00:00:00' WHERE PRCo = 1 AND Employee = ?", (e,))
    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    routes = run.requests("safetyamp")["by_route"]
    ledger = [r for r in run.store.ledger_query(run_id=outcome.run_id) if r["status"] == "ok"]
    changed = {r["key"]: set(r["changed_fields"]) for r in ledger}
    assert changed[str(a)] == {"first_name"}
    assert {"mobile_phone", "work_phone"} & changed[str(b)]
    assert changed[str(c)] == {"current_title"} or changed[str(c)] == {"current_title_id"}
    assert changed[str(e)] == {"system_access"}
    # The department move changes no compared field of a user whose home site comes from a job.
    assert str(d) not in changed
    assert routes == {"PATCH /api/users/{id}": 4}, routes
    state = _by_key(run, "users")
    assert state[str(a)]["first_name"] == "Zebulon"
    assert state[str(e)]["system_access"] in (False, 0)


def test_reconcile_finds_and_repairs_a_manual_change(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    assert run.sync().success
    users = _by_key(run, "users")
    victim = next(u for u in users.values() if u.get("system_access"))
    response = run.safetyamp("PATCH", f"/api/users/{victim['id']}", json={
        "first_name": "Tampered", "last_name": victim["last_name"], "email": victim["email"],
    })
    assert response.status_code == 200, response.text
    assert run.sync().total("updated") == 0  # the mirror is fresh: an ordinary run does not see it
    outcome = run.sync("safetyamp_reconcile")
    assert outcome.success, outcome.failure
    assert outcome.sinks["users"]["drift"] >= 1
    assert outcome.sinks["users"]["updated"] == 1
    assert _by_key(run, "users")[victim["emp_id"]]["first_name"] == victim["first_name"]


def test_blocking_check_stops_the_writes_of_that_run(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    assert run.sync().success
    with run.vista() as db:  # a broken extract: most active employees vanish
        db.execute("DELETE FROM bPREH WHERE Employee % 10 != 0")
    run.reset_requests()
    outcome = run.sync()
    assert not outcome.success
    # The check itself failed (not any crash of the employees step).
    check_failed(run.instance, ["viewpoint", "employees"], "active_count_stable", outcome.run_id)
    routes = run.requests("safetyamp")["by_route"]
    assert not any(r.startswith(("PATCH", "PUT", "POST")) for r in routes), routes
    assert "users" not in outcome.sinks


def test_backfill_of_eight_payroll_weeks(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    keys = PAYROLL_WEEKS.get_partition_keys()
    weeks = keys[-10:-2]
    from safetyamp_pipeline.definitions import defs
    from safetyamp_pipeline.sync.headless import environment

    with environment(run.env):
        definitions = defs()
        assets_def = definitions.resolve_assets_def(dg.AssetKey(["viewpoint", "job_assignments"]))
        for week in weeks:
            result = dg.materialize([assets_def], partition_key=week, instance=run.instance)
            assert result.success
    materialized = run.instance.get_materialized_partitions(dg.AssetKey(["viewpoint", "job_assignments"]))
    assert set(weeks) <= materialized
    assert set(weeks) <= set(run.store.asset_partitions("viewpoint/job_assignments"))


def test_sink_value_loads_in_a_later_run_with_a_fresh_dagster_home(tmp_path: Path) -> None:
    sandbox, run = start_run(tmp_path / "a")
    try:
        assert run.sync().success
        fresh_home = tmp_path / "fresh_home"
        fresh_home.mkdir()
        env = {**run.env, "DAGSTER_HOME": str(fresh_home)}
        instance = dg.DagsterInstance.local_temp(str(fresh_home))
        from safetyamp_pipeline.sync.headless import run_job

        # Only the assets sink, in a new instance: it must load users/sites from the store.
        outcome = run_job(env, instance=instance, selection=[dg.AssetKey(["safetyamp", "assets"])])
        assert outcome.success, outcome.failure
        assert outcome.sinks["assets"]["unchanged"] > 0
        instance.dispose()
    finally:
        run.instance.dispose()
        sandbox.stop()


def test_current_week_partition_is_the_run_default() -> None:
    assert current_week_key() in PAYROLL_WEEKS.get_partition_keys()


def test_dry_run_plans_everything_and_writes_nothing(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    outcome = run.sync(tags={"dry_run": "true"})
    assert outcome.success, outcome.failure
    routes = run.requests("safetyamp")["by_route"]
    assert not any(r.startswith(("POST", "PUT", "PATCH")) for r in routes), routes
    assert outcome.sinks["site_clusters"]["planned_create"] > 0
    assert outcome.sinks["users"]["dry_run"] is True
    assert run.state()["users"] == []
    planned = run.store.ledger_query(run_id=outcome.run_id)
    assert planned and {r["status"] for r in planned} == {"planned"}
    # The real run afterwards creates what the dry run planned for the clusters.
    real = run.sync()
    assert real.sinks["site_clusters"]["created"] == outcome.sinks["site_clusters"]["planned_create"]


def test_a_record_created_by_hand_is_adopted_not_duplicated(sandbox_run: SandboxRun) -> None:
    run = sandbox_run
    assert run.sync().success
    sites = _by_key(run, "sites")
    cluster_id = next(iter(sites.values()))["cluster_id"]
    with run.vista() as db:
        contract, department = db.execute(
            "SELECT c.Contract, c.Department FROM bJCCM c JOIN bPRDP d ON d.PRDept = c.Department AND d.PRCo = 1 "
            "WHERE c.JCCo = 1 LIMIT 1"
        ).fetchone()
        db.execute(
            "INSERT INTO bJCJM (JCCo, Job, Description, Contract, JobStatus, ShipAddress, ShipCity, ShipState, ShipZip) "
            "VALUES (1, '99901.', 'Hand Made Site', ?, 1, '1 Levee Rd', 'Baton Rouge', 'LA', '70801')",
            (contract,),
        )
    # Someone creates the site in SafetyAmp before the sync does (e.g. a run that died after the POST).
    response = run.safetyamp("POST", "/api/sites", json={"name": "99901. - Hand Made", "cluster_id": cluster_id, "ext_id": "99901."})
    assert response.status_code == 201, response.text
    outcome = run.sync()
    assert outcome.success, outcome.failure
    assert outcome.sinks["sites"]["healed"] == 1, {k: v for k, v in outcome.sinks["sites"].items() if k in ("changes", "failures", "rejected", "created", "updated", "unchanged")}
    assert outcome.sinks["sites"]["failed"] == 0
    site = _by_key(run, "sites")["99901."]  # _by_key fails on a duplicate
    assert site["name"] == "99901. - Hand Made Site"
    assert run.store.failures_open(entity="sites") == []


def _duplicates(values: list) -> list:
    return sorted(str(v) for v, n in Counter(v for v in values if v not in (None, "")).items() if n > 1)


def test_a_server_that_caps_the_page_size_is_read_whole(tmp_path: Path) -> None:
    # `safetyamp-sandbox up --safetyamp-max-page-size 25`: SafetyAmp grants 25 records per page
    # whatever `limit` the client asks for (100).
    sandbox, run = start_run(tmp_path, safetyamp_max_page_size=25)
    try:
        first = run.sync()
        assert first.success, first.failure
        state = run.state()
        assert len(state["users"]) > 50 and len(state["sites"]) > 25  # several pages each
        run.reset_requests()
        reconcile = run.sync("safetyamp_reconcile")
        assert reconcile.success, reconcile.failure
        routes = run.requests("safetyamp")["by_route"]
        assert all(route.startswith("GET ") for route in routes), routes
        assert reconcile.total("created") + reconcile.total("updated") + reconcile.total("deactivated") == 0
        assert reconcile.total("failed") == 0
        state = run.state()
        assert _duplicates([t["name"].casefold() for t in state["user_titles"]]) == []
        assert _duplicates([a.get("serial") for a in state["assets"]]) == []
        assert _duplicates([s.get("ext_id") for s in state["sites"]]) == []
        assert _duplicates([u.get("emp_id") for u in state["users"]]) == []
    finally:
        run.instance.dispose()
        sandbox.stop()
