"""The jobs' business settings come from the environment (issue 19.6), through build_resources."""

import os

import pytest

from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.defs.resources import build_resources


def test_the_jobs_settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SAFETYAMP_VEHICLE_SITE_NAME": "Main Shop", "SAFETYAMP_DEFAULT_ROLE_NAME": "Crew",
           "SAFETYAMP_PLACEHOLDER_ZIP": "99999", "SAFETYAMP_LOOKBACK_WEEKS": "8", "VIEWPOINT_PR_COMPANY": "3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = build_resources(os.environ)["sync_settings"].settings()  # type: ignore[attr-defined]
    assert (settings.vehicle_site_name, settings.default_role_name) == ("Main Shop", "Crew")
    assert (settings.placeholder_zip, settings.lookback_weeks, settings.pr_company) == ("99999", 8, 3)


def test_without_variables_the_settings_are_the_legacy_defaults() -> None:
    assert build_resources({})["sync_settings"].settings() == SyncSettings()  # type: ignore[attr-defined]
