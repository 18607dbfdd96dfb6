"""Sensors' ticks and schedules' run requests, through Dagster's test contexts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from safetyamp_pipeline.clients.resources import VistaResource
from safetyamp_pipeline.defs.automation import safetyamp_reconcile_nightly, safetyamp_sync_hourly
from safetyamp_pipeline.defs.sensors import vista_change_sensor
from safetyamp_pipeline.sandbox.generate import generate_dataset
from safetyamp_pipeline.sync.calendar import current_week_key


@pytest.fixture(scope="module")
def vista_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vista")
    generate_dataset(directory, employees=40, seed=3)
    return directory / "vista.db"


def test_schedules_request_the_current_payroll_week() -> None:
    from safetyamp_pipeline.definitions import defs

    repository = defs().get_repository_def()
    # A schedule context reads its instance from a reference, so a real (temporary) instance is needed.
    with dg.instance_for_test() as instance:
        for schedule in (safetyamp_sync_hourly, safetyamp_reconcile_nightly):
            with dg.build_schedule_context(instance=instance, repository_def=repository) as context:
                request = schedule.evaluate_tick(context).run_requests[0]
            assert request.partition_key == current_week_key()
    assert safetyamp_sync_hourly.cron_schedule == "0 * * * *"
    assert safetyamp_sync_hourly.execution_timezone == "America/Chicago"


@pytest.mark.parametrize(
    ("env", "override", "expected"),
    [("sandbox", "", "STOPPED"), ("production", "", "RUNNING"), ("production", "stopped", "STOPPED")],
)
def test_schedules_and_sensors_run_by_default_only_in_production(env: str, override: str, expected: str) -> None:
    code = (
        "from safetyamp_pipeline.defs import automation, sensors;"
        "print(automation.safetyamp_sync_hourly.default_status.value, sensors.vista_change_sensor.default_status.value)"
    )
    out = subprocess.run([sys.executable, "-c", code], env={"SAFETYAMP_ENV": env, "SAFETYAMP_AUTOMATION_DEFAULT": override, "PATH": ""}, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, expected]


def test_vista_change_sensor_requests_an_employee_sync_only_on_change(vista_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIEWPOINT_DB_URL", f"sqlite:///{vista_db}")
    resources = {"vista": VistaResource()}
    from safetyamp_pipeline.definitions import defs

    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()  # no sync run queued or running
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=definitions) as context:
        first = vista_change_sensor.evaluate_tick(context)
    assert not first.run_requests and first.cursor
    with dg.build_sensor_context(
        instance=instance, cursor=first.cursor, resources={"vista": VistaResource()}, definitions=definitions
    ) as context:
        unchanged = vista_change_sensor.evaluate_tick(context)
    assert not unchanged.run_requests and unchanged.cursor == first.cursor

    with sqlite3.connect(vista_db) as db:
        db.execute("UPDATE bPREH SET LastName = 'Changed' WHERE Employee = (SELECT MIN(Employee) FROM bPREH WHERE PRCo = 1) AND PRCo = 1")
    from safetyamp_pipeline.clients.vista_connect import dispose_vista_engines

    dispose_vista_engines()
    with dg.build_sensor_context(
        instance=instance, cursor=first.cursor, resources={"vista": VistaResource()}, definitions=definitions
    ) as context:
        changed = vista_change_sensor.evaluate_tick(context)
    assert len(changed.run_requests) == 1
    request = changed.run_requests[0]
    assert request.job_name in (None, "safetyamp_employee_sync")
    assert request.partition_key == current_week_key()
    assert request.run_key.startswith("vista-") and request.run_key[6:] == json.loads(changed.cursor)["digest"]
    assert "bPREH" in request.tags["safetyamp/changed_tables"]


# sync_alerts: safetyamp_pipeline_tests/defs/test_alerts.py
