"""Business literals are settings read from the environment (defaults unchanged)."""

from __future__ import annotations

import dataclasses

import pytest

from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.sync.settings_env import SettingsError, documented_settings, sync_settings_from_env


def test_no_variable_means_the_legacy_defaults():
    assert sync_settings_from_env({}) == SyncSettings()
    assert sync_settings_from_env({"SAFETYAMP_VEHICLE_SITE_NAME": "  "}) == SyncSettings()
    defaults = {var: default for var, _, default in documented_settings()}
    assert defaults["SAFETYAMP_VEHICLE_SITE_NAME"] == "Yard" and defaults["SAFETYAMP_DEFAULT_ROLE_NAME"] == "Field"
    assert defaults["VIEWPOINT_PR_COMPANY"] == 1 and len(defaults) == len(dataclasses.fields(SyncSettings))


def test_every_kind_of_setting_is_read():
    settings = sync_settings_from_env({
        "SAFETYAMP_VEHICLE_SITE_NAME": "Main Shop", "SAFETYAMP_DEFAULT_ROLE_NAME": "Crew",
        "SAFETYAMP_TIMEZONE": "America/New_York", "SAFETYAMP_NEW_USER_TEXT_OPT_OUT": "0",
        "SAFETYAMP_MASS_DEACTIVATION_SHARE": "0.25", "SAFETYAMP_TERMINATED_WINDOW_DAYS": "30",
        "VIEWPOINT_PR_COMPANY": "3", "SAFETYAMP_ROOT_CLUSTER_NAME": "ACME",
    })
    assert (settings.vehicle_site_name, settings.default_role_name, settings.timezone) == ("Main Shop", "Crew", "America/New_York")
    assert (settings.new_user_text_opt_out, settings.mass_deactivation_share, settings.term_window_days) == (0, 0.25, 30)
    assert (settings.pr_company, settings.root_cluster_name) == (3, "ACME")
    assert sync_settings_from_env({"SAFETYAMP_DEFAULT_ROLE_NAME": "Crew"}, default_role_name="Office").default_role_name == "Office"


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("SAFETYAMP_MASS_DEACTIVATION_MIN", "five", "must be an integer, got 'five'"),
    ("SAFETYAMP_EMPLOYEE_DROP_SHARE", "20%", "must be a number, got '20%'"),
])
def test_a_bad_value_names_its_variable(name, value, expected):
    with pytest.raises(SettingsError, match=f"{name} {expected}"):
        sync_settings_from_env({name: value})


def test_the_cli_plans_with_the_configured_literals(pipeline, synced, monkeypatch):
    vehicle = next(r for r in synced.desired("desired/assets") if not r.rejected)
    monkeypatch.setenv("SAFETYAMP_VEHICLE_ASSET_TYPE_NAME", "Boats")
    result = pipeline("explain", "vehicle", vehicle.key)
    assert result.code == 0, result.err
    assert "asset type 'Boats' is not in SafetyAmp" in result.out
    monkeypatch.setenv("SAFETYAMP_MASS_DEACTIVATION_MIN", "many")
    failed = pipeline("explain", "vehicle", vehicle.key)
    assert failed.code == 2 and "SAFETYAMP_MASS_DEACTIVATION_MIN must be an integer" in failed.err


def test_a_job_uses_the_configured_vehicle_asset_type(synced):
    import dagster as dg

    from safetyamp_pipeline.sync.headless import run_job

    env = {**synced.run.env, "SAFETYAMP_VEHICLE_ASSET_TYPE_NAME": "Boats"}
    outcome = run_job(env, instance=synced.run.instance, tags={"dry_run": "true"},
                      selection=[dg.AssetKey(["safetyamp", "assets"])])
    assert outcome.success, outcome.failure
    assets = outcome.sinks["assets"]
    sendable = [r for r in synced.desired("desired/assets") if not r.rejected]
    assert assets["rejected_before_send"] >= len(sendable) > 0
    assert assets["planned_create"] + assets["planned_update"] == 0
    reasons = [r.data["reason"] for r in assets["rejected"].records]
    assert sum("asset type 'Boats' is not in SafetyAmp" in reason for reason in reasons) == len(sendable)
