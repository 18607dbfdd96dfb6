"""The code location loads, and holds the graph, checks, jobs, schedules and sensors of DESIGN §4."""

from __future__ import annotations

import dagster as dg

from safetyamp_pipeline.definitions import defs

EXPECTED_ASSETS = {
    "viewpoint/departments", "viewpoint/jobs", "viewpoint/employees", "viewpoint/job_assignments",
    "entra/users", "samsara/vehicles",
    "desired/site_clusters", "desired/sites", "desired/titles", "desired/users", "desired/assets",
    "safetyamp/site_clusters", "safetyamp/sites", "safetyamp/user_titles", "safetyamp/users", "safetyamp/assets",
}


def _defs() -> dg.Definitions:
    return defs()


def test_code_location_is_loadable() -> None:
    dg.Definitions.validate_loadable(_defs())


def test_asset_graph_matches_design() -> None:
    graph = _defs().resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey(["safetyamp", "users"])).parent_keys}
    assert {"desired/users", "safetyamp/sites", "safetyamp/site_clusters", "safetyamp/user_titles"} <= parents
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey(["safetyamp", "sites"])).parent_keys}
    assert "safetyamp/site_clusters" in parents


def test_every_sink_uses_the_safetyamp_pool() -> None:
    graph = _defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        pools = node.pools if hasattr(node, "pools") else set()
        if key.path[0] == "safetyamp":
            assert pools == {"safetyamp_api"}, key


def test_jobs_schedules_sensors_exist() -> None:
    d = _defs()
    for job in ("safetyamp_sync", "safetyamp_reconcile", "safetyamp_employee_sync"):
        assert d.resolve_job_def(job) is not None
    assert d.resolve_schedule_def("safetyamp_sync_hourly").execution_timezone == "America/Chicago"
    assert d.resolve_schedule_def("safetyamp_reconcile_nightly") is not None
    assert d.resolve_sensor_def("vista_change_sensor") is not None
    assert d.resolve_sensor_def("sync_alerts") is not None


def test_blocking_guard_on_active_employee_count() -> None:
    graph = _defs().resolve_asset_graph()
    key = dg.AssetCheckKey(dg.AssetKey(["viewpoint", "employees"]), "active_count_stable")
    assert graph.get_check_spec(key).blocking
