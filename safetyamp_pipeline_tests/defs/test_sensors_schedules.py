"""Sensors' ticks and schedules' run requests, through Dagster's test contexts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from safetyamp_pipeline.clients.resources import VistaResource
from safetyamp_pipeline.defs.alerts import sync_alerts
from safetyamp_pipeline.defs.automation import safetyamp_reconcile_nightly, safetyamp_sync_hourly
from safetyamp_pipeline.defs.sensors import vista_change_sensor
from safetyamp_pipeline.sandbox.generate import generate_dataset
from safetyamp_pipeline.sandbox.server import ServerThread
from safetyamp_pipeline.sync.calendar import current_week_key


@pytest.fixture(scope="module")
def vista_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vista")
    generate_dataset(directory, employees=40, seed=3)
    return directory / "vista.db"


def test_schedules_request_the_current_payroll_week() -> None:
    from safetyamp_pipeline.definitions import defs

    repository = defs().get_repository_def()
    for schedule in (safetyamp_sync_hourly, safetyamp_reconcile_nightly):
        with dg.build_schedule_context(repository_def=repository) as context:
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
    with dg.build_sensor_context(resources=resources, definitions=definitions) as context:
        first = vista_change_sensor.evaluate_tick(context)
    assert not first.run_requests and first.cursor
    with dg.build_sensor_context(cursor=first.cursor, resources={"vista": VistaResource()}, definitions=definitions) as context:
        unchanged = vista_change_sensor.evaluate_tick(context)
    assert not unchanged.run_requests and unchanged.cursor == first.cursor

    with sqlite3.connect(vista_db) as db:
        db.execute("UPDATE bPREH SET LastName = 'Changed' WHERE Employee = (SELECT MIN(Employee) FROM bPREH WHERE PRCo = 1) AND PRCo = 1")
    from safetyamp_pipeline.clients.vista_connect import dispose_vista_engines

    dispose_vista_engines()
    with dg.build_sensor_context(cursor=first.cursor, resources={"vista": VistaResource()}, definitions=definitions) as context:
        changed = vista_change_sensor.evaluate_tick(context)
    assert len(changed.run_requests) == 1
    request = changed.run_requests[0]
    assert request.job_name in (None, "safetyamp_employee_sync")
    assert request.partition_key == current_week_key()
    assert request.run_key.startswith("vista-") and request.run_key[6:] == json.loads(changed.cursor)["digest"]
    assert "bPREH" in request.tags["safetyamp/changed_tables"]


# -- sync_alerts -------------------------------------------------------------------------------

class Hook:
    def __init__(self) -> None:
        self.messages: list[dict] = []

        async def receive(request: Request) -> JSONResponse:
            self.messages.append(await request.json())
            return JSONResponse({"ok": True})

        self.server = ServerThread(Starlette(routes=[Route("/hook", receive, methods=["POST"])])).start()

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"


def _defs(fail_check: bool, fail_run: bool) -> dg.Definitions:
    @dg.asset(name="probe", check_specs=[dg.AssetCheckSpec("probe_ok", asset="probe")])
    def probe() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={"count": 3},
            check_results=[dg.AssetCheckResult(check_name="probe_ok", passed=not fail_check, metadata={"bad": 2})],
        )

    @dg.asset(name="breaker", deps=[probe])
    def breaker() -> None:
        if fail_run:
            raise RuntimeError("upstream broke for jane.doe@example.com")

    return dg.Definitions(assets=[probe, breaker], jobs=[dg.define_asset_job("probe_job")], sensors=[sync_alerts])


def _job(fail_check: bool, fail_run: bool) -> dg.JobDefinition:
    return _defs(fail_check, fail_run).resolve_job_def("probe_job")


def test_sync_alerts_is_off_without_a_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFETYAMP_ALERT_WEBHOOK_URL", raising=False)
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        result = sync_alerts.evaluate_tick(context)
    assert not result.run_requests and "not set" in (result.skip_message or "")


def test_sync_alerts_posts_on_failures_and_check_state_changes_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hook = Hook()
    monkeypatch.setenv("SAFETYAMP_ALERT_WEBHOOK_URL", hook.url)
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            _job(fail_check=False, fail_run=False).execute_in_process(instance=instance)

            def tick(cursor: str | None) -> str:
                definitions = _defs(False, False)
                with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions) as context:
                    return sync_alerts.evaluate_tick(context).cursor

            cursor = tick(None)  # first tick: baseline, no alert for history
            assert hook.messages == []

            _job(fail_check=True, fail_run=True).execute_in_process(instance=instance, raise_on_error=False)
            cursor = tick(cursor)
            titles = sorted(m["title"] for m in hook.messages)
            assert titles == ["SafetyAmp check failing", "SafetyAmp sync run failed (probe_job)"]
            assert all("/runs/" in m["link"] for m in hook.messages)
            assert not any("jane.doe@example.com" in json.dumps(m) for m in hook.messages)

            hook.messages.clear()
            _job(fail_check=True, fail_run=True).execute_in_process(instance=instance, raise_on_error=False)
            tick(cursor)
            # The check was already failing: only the new run failure is posted.
            assert [m["title"] for m in hook.messages] == ["SafetyAmp sync run failed (probe_job)"]
    finally:
        hook.server.stop()
