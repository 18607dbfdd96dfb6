"""``sync_alerts``: no alert is lost while the webhook is down, a recovered check says so, repeated
failures are grouped, stale sinks are reported. Real runs on a real instance, a real HTTP webhook."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from safetyamp_pipeline.defs import alert_outbox
from safetyamp_pipeline.defs.alerts import sync_alerts
from safetyamp_pipeline.defs.safetyamp.freshness import policy_windows
from safetyamp_pipeline.sandbox.server import ServerThread

WEBHOOK_ENV = "SAFETYAMP_ALERT_WEBHOOK_URL"
RUN_FAILED = "SafetyAmp sync run failed (probe_job)"


class Hook:
    """A webhook that can answer an error status; ``accepted`` holds what it took (2xx)."""

    def __init__(self) -> None:
        self.accepted: list[dict] = []
        self.refused = 0
        self.status = 200

        async def receive(request: Request) -> JSONResponse:
            body = await request.json()
            if self.status >= 300:
                self.refused += 1
                return JSONResponse({"error": "down"}, status_code=self.status)
            self.accepted.append(body)
            return JSONResponse({"ok": True})

        self.server = ServerThread(Starlette(routes=[Route("/hook", receive, methods=["POST"])])).start()

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"

    def titles(self) -> list[str]:
        return [m["title"] for m in self.accepted]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


def _defs(fail_check: bool = False, fail_run: bool = False) -> dg.Definitions:
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

    @dg.asset(
        name="fresh_sink",
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=6), warn_window=timedelta(hours=2)),
    )
    def fresh_sink() -> None:
        return None

    return dg.Definitions(
        assets=[probe, breaker, fresh_sink],
        jobs=[
            dg.define_asset_job("probe_job", selection=["probe", "breaker"]),
            dg.define_asset_job("other_job", selection=["probe", "breaker"]),
            dg.define_asset_job("fresh_job", selection=["fresh_sink"]),
        ],
        sensors=[sync_alerts],
    )


def _run(instance: dg.DagsterInstance, job: str = "probe_job", **failures: bool) -> None:
    _defs(**failures).resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)


class Ticker:
    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor: str | None = None
        self.skip: str | None = None

    def __call__(self) -> None:
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=_defs()) as context:
            result = sync_alerts.evaluate_tick(context)
        self.cursor, self.skip = result.cursor, result.skip_message


@pytest.fixture
def hook() -> Iterator[Hook]:
    hook = Hook()
    try:
        yield hook
    finally:
        hook.server.stop()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance


@pytest.fixture
def tick(instance: dg.DagsterInstance, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> Ticker:
    monkeypatch.setenv(WEBHOOK_ENV, hook.url)
    _run(instance)
    _defs().resolve_job_def("fresh_job").execute_in_process(instance=instance)
    ticker = Ticker(instance)
    ticker()  # first tick: the baseline, no alert for history
    assert hook.accepted == []
    return ticker


def test_sync_alerts_is_off_without_a_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        result = sync_alerts.evaluate_tick(context)
    assert not result.run_requests and "not set" in (result.skip_message or "")


def test_an_alert_raised_while_the_webhook_is_down_is_delivered_once_when_it_is_back(tick, hook, instance, monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, _closed_port_url())  # the webhook is down: connection refused
    _run(instance, fail_run=True)
    tick()
    assert "waiting: 1" in (tick.skip or "")
    monkeypatch.setenv(WEBHOOK_ENV, hook.url)
    hook.status = 503  # up, but failing
    tick()
    assert hook.accepted == [] and hook.refused == 1

    hook.status = 200  # back
    tick()
    tick()
    assert hook.titles() == [RUN_FAILED]
    text = hook.accepted[0]["text"]
    assert "Step `breaker` failed" in text and "/runs/" in hook.accepted[0]["link"]
    assert "jane.doe@example.com" not in json.dumps(hook.accepted)


def test_delivery_attempts_are_capped_with_a_log_line(tick, hook, instance, monkeypatch, capfd):
    monkeypatch.setenv("SAFETYAMP_ALERT_MAX_ATTEMPTS", "2")
    hook.status = 500
    _run(instance, fail_run=True)
    capfd.readouterr()
    tick()
    assert "Alert webhook failed (HTTP 500), attempt 1 of 2" in capfd.readouterr().err
    tick()
    log = capfd.readouterr().err
    assert "Alert dropped" in log and "2 attempts failed, the last with HTTP 500" in log
    assert "waiting: 0" in (tick.skip or "") and "dropped so far: 1" in (tick.skip or "")
    hook.status = 200
    tick()
    assert hook.accepted == [] and hook.refused == 2


def test_a_webhook_that_refuses_the_message_for_good_does_not_block_the_others(tick, hook, instance, monkeypatch):
    hook.status = 400
    _run(instance, fail_run=True)
    _run(instance, job="other_job", fail_run=True)
    tick()
    assert hook.refused == 2 and "waiting: 0" in (tick.skip or "")


def test_a_check_that_recovers_sends_its_recovery_message(tick, hook, instance):
    _run(instance, fail_check=True)
    tick()
    assert hook.titles() == ["SafetyAmp check failing"]
    assert "probe:probe_ok" in hook.accepted[0]["text"] and "bad: 2" in hook.accepted[0]["text"]
    _run(instance, fail_check=True)
    tick()
    assert hook.titles() == ["SafetyAmp check failing"]  # still failing: no new message
    _run(instance)
    tick()
    tick()
    assert hook.titles() == ["SafetyAmp check failing", "SafetyAmp check recovered"]
    assert "probe:probe_ok" in hook.accepted[1]["text"]


def test_repeated_failures_within_an_hour_are_grouped_into_one_message(tick, hook, instance, monkeypatch):
    start = time.time()
    monkeypatch.setattr(alert_outbox, "clock", lambda: start)
    for _ in range(3):
        _run(instance, fail_run=True)
    tick()
    _run(instance, fail_run=True)
    tick()
    assert hook.titles() == [RUN_FAILED]  # four failures of probe_job/breaker: one message

    _run(instance, job="other_job", fail_run=True)  # another job is another group
    tick()
    assert hook.titles() == [RUN_FAILED, "SafetyAmp sync run failed (other_job)"]

    monkeypatch.setattr(alert_outbox, "clock", lambda: start + 3601)
    tick()
    tick()
    assert hook.titles()[2:] == [f"{RUN_FAILED}: 3 more"]
    assert "`probe_job` step `breaker` failed 3 more time(s)" in hook.accepted[2]["text"]

    monkeypatch.setattr(alert_outbox, "clock", lambda: start + 3700)
    _run(instance, fail_run=True)  # within the new hour of the group: held again
    tick()
    assert len(hook.accepted) == 3


def test_a_stale_sink_is_reported_and_so_is_its_recovery(tick, hook, instance, monkeypatch):
    start = time.time()
    monkeypatch.setattr(alert_outbox, "clock", lambda: start + timedelta(hours=2, minutes=1).total_seconds())
    tick()
    monkeypatch.setattr(alert_outbox, "clock", lambda: start + timedelta(hours=6, minutes=1).total_seconds())
    tick()
    assert hook.titles() == ["SafetyAmp sink stale (WARN)", "SafetyAmp sink stale (FAIL)"]
    assert "`fresh_sink` last succeeded 6:0" in hook.accepted[1]["text"]
    assert "/assets/fresh_sink" in hook.accepted[1]["link"]

    monkeypatch.setattr(alert_outbox, "clock", time.time)
    _defs().resolve_job_def("fresh_job").execute_in_process(instance=instance)
    tick()
    assert hook.titles()[2:] == ["SafetyAmp sink fresh again"]


def test_every_sink_asset_has_a_time_window_policy_the_sensor_judges():
    from safetyamp_pipeline.definitions import defs

    graph = defs().get_repository_def().asset_graph
    for entity in ("site_clusters", "sites", "user_titles", "users", "assets"):
        windows = policy_windows(graph.get(dg.AssetKey(["safetyamp", entity])).freshness_policy)
        assert windows is not None, entity
    assert policy_windows(graph.get(dg.AssetKey(["safetyamp", "users"])).freshness_policy) == (
        timedelta(hours=2), timedelta(hours=6)
    )


def test_teams_and_slack_formats_carry_the_same_alert(tick, hook, instance, monkeypatch):
    monkeypatch.setenv("SAFETYAMP_ALERT_FORMAT", "teams")
    _run(instance, fail_run=True)
    tick()
    [teams] = hook.accepted
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == RUN_FAILED
    assert "/runs/" in card["content"]["actions"][0]["url"]

    monkeypatch.setenv("SAFETYAMP_ALERT_FORMAT", "slack")
    _run(instance, job="other_job", fail_run=True)
    tick()
    slack = hook.accepted[1]
    assert set(slack) == {"text"} and slack["text"].startswith("*SafetyAmp sync run failed (other_job)*")
    assert "|Open in Dagster>" in slack["text"]
    assert "jane.doe@example.com" not in json.dumps(hook.accepted)


def test_an_unknown_alert_format_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/hook")
    monkeypatch.setenv("SAFETYAMP_ALERT_FORMAT", "pager")
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context, pytest.raises(Exception, match="SAFETYAMP_ALERT_FORMAT='pager'"):
        sync_alerts.evaluate_tick(context)
