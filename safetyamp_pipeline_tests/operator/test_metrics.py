"""`safetyamp-pipeline metrics`: after a sandbox sync the exporter reports every sink, the open
failures and the ledger, from a process of its own and over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from safetyamp_pipeline import cli
from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline.operator.metrics import ENTITIES, METRICS, SyncCollector
from safetyamp_pipeline.sync.headless import SyncOutcome
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Synced:
    run: SandboxRun
    outcome: SyncOutcome
    before: float
    after: float
    rejected_key: str


def reject_one_user(run: SandboxRun) -> str:
    """A synced employee's Vista e-mail is changed to one a hand-made SafetyAmp user holds, so the
    next sync's PATCH gets a real 422 and an open `rejected` failure."""
    mirror = run.store.mirror_records("users")
    desired = [record_from_row(row) for row in run.store.load_asset_value("desired/users")]
    key = next(
        r.key for r in desired
        if not r.rejected and not r.deactivate and r.key in mirror and r.provenance.get("email") == "Vista bPREH.Email"
    )
    taken = f"metrics.taken.{key}@iandi-co.example"
    response = run.safetyamp("POST", "/api/users", json={"first_name": "Hand", "last_name": "Made", "email": taken})
    assert response.status_code in (200, 201), response.text
    with run.vista() as db:
        db.execute("UPDATE bPREH SET Email = ? WHERE Employee = ?", (taken, int(key)))
    return key


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    sandbox, run = start_run(tmp_path_factory.mktemp("metrics"))
    try:
        before = time.time()
        first = run.sync()
        assert first.success, first.failure
        key = reject_one_user(run)
        second = run.sync()
        assert second.success, second.failure
        yield Synced(run, second, before, time.time(), key)
    finally:
        run.instance.dispose()
        sandbox.stop()


def _parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


def _once(synced: Synced, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store_url: str | None = None):
    monkeypatch.setenv("DAGSTER_HOME", synced.run.env["DAGSTER_HOME"])
    capsys.readouterr()
    code = cli.main(["metrics", "--once", "--store-url", store_url or synced.run.env["SAFETYAMP_STORE_URL"]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_once_reports_every_sink_the_open_failures_and_the_ledger(synced, capsys, monkeypatch):
    code, out, err = _once(synced, capsys, monkeypatch)
    assert code == 0, err
    samples = _parse(out)
    store = synced.run.store

    for entity in ENTITIES:
        stamp = _value(samples, "safetyamp_sink_last_success_timestamp_seconds", entity=entity)
        assert synced.before <= stamp <= synced.after, entity
        sink = synced.outcome.sinks[entity]
        assert _value(samples, "safetyamp_api_requests", entity=entity) == sink["api_calls"]
        for state, key in (("created", "created"), ("updated", "updated"), ("unchanged", "unchanged"),
                           ("rejected", "rejected_before_send"), ("failed", "failed"), ("deactivated", "deactivated")):
            assert _value(samples, "safetyamp_sink_records", entity=entity, state=state) == sink[key], (entity, state)
        assert ("safetyamp_rate_limit_wait_seconds", (("entity", entity),)) in samples

    # The 422 of the second run is an open failure; every other entity/kind is an explicit 0.
    open_users = [f for f in store.failures_open("users") if f["kind"] == "rejected"]
    assert [f["key"] for f in open_users] == [synced.rejected_key]
    assert _value(samples, "safetyamp_open_failures", entity="users", kind="rejected") == 1
    assert _value(samples, "safetyamp_open_failures", entity="sites", kind="transient") == 0

    ledger = store.ledger_query(entity="users")
    created_ok = sum(1 for e in ledger if e["action"] == "create" and e["status"] == "ok")
    failed_updates = sum(1 for e in ledger if e["action"] == "update" and e["status"] == "failed")
    assert created_ok > 0 and failed_updates == 1
    assert _value(samples, "safetyamp_ledger_writes_total", entity="users", action="create", status="ok") == created_ok
    assert _value(samples, "safetyamp_ledger_writes_total", entity="users", action="update", status="failed") == 1

    assert _value(samples, "safetyamp_job_last_run_status", job="safetyamp_sync", status="success") == 1
    assert _value(samples, "safetyamp_job_last_run_status", job="safetyamp_sync", status="failure") == 0
    # The sandbox starts its schedules stopped (defs/automation.py).
    assert _value(samples, "safetyamp_automation_running", name="safetyamp_sync_hourly", type="schedule") == 0
    assert _value(samples, "safetyamp_exporter_store_up") == 1
    assert _value(samples, "safetyamp_exporter_instance_up") == 1
    assert synced.rejected_key not in out  # no record key (person data) in any label
    # What is served is what is declared (the dashboard and alert-rule tests check against it);
    # only the daemon's heartbeats and the ticks need a running daemon, which a sandbox sync has not.
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            assert sample.name in METRICS, sample.name
            assert set(sample.labels) == set(METRICS[sample.name].labels), sample.name
    needs_daemon = {"safetyamp_daemon_last_heartbeat_timestamp_seconds", "safetyamp_automation_last_tick_timestamp_seconds"}
    assert {name for name, _ in samples} == set(METRICS) - needs_daemon


def test_serve_answers_get_metrics_over_http_from_its_own_process(synced, capsys, monkeypatch):
    env = {**os.environ, "DAGSTER_HOME": synced.run.env["DAGSTER_HOME"],
           "SAFETYAMP_STORE_URL": synced.run.env["SAFETYAMP_STORE_URL"]}
    server = subprocess.Popen(
        [sys.executable, "-m", "safetyamp_pipeline.cli", "metrics", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("Serving metrics on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].strip()
        response = requests.get(url, timeout=60)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        served = _parse(response.text)
    finally:
        server.terminate()
        server.wait(timeout=30)

    code, out, _ = _once(synced, capsys, monkeypatch)
    assert code == 0
    printed = _parse(out)
    volatile = {"safetyamp_exporter_collect_duration_seconds"}
    assert {k: v for k, v in served.items() if k[0] not in volatile} == {k: v for k, v in printed.items() if k[0] not in volatile}
    for entity in ENTITIES:
        assert _value(served, "safetyamp_sink_last_success_timestamp_seconds", entity=entity) >= synced.before


def test_an_unreadable_store_is_reported_as_down_not_as_zero_failures(synced, capsys, monkeypatch, caplog, tmp_path: Path):
    code, out, _ = _once(synced, capsys, monkeypatch, store_url=f"sqlite:///{tmp_path / 'missing' / 'store.db'}")
    assert code == 1
    samples = _parse(out)
    assert _value(samples, "safetyamp_exporter_store_up") == 0
    assert _value(samples, "safetyamp_exporter_instance_up") == 1
    assert not any(name == "safetyamp_open_failures" for name, _ in samples)
    assert any("cannot read the store" in r.getMessage() for r in caplog.records)


def test_the_exporter_recovers_when_the_store_comes_back(synced):
    attempts = {"n": 0}

    def flaky_store():
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("store down")
        return synced.run.store

    collector = SyncCollector(flaky_store, lambda: synced.run.instance, cache_seconds=0)
    assert collector.snapshot().samples["safetyamp_exporter_store_up"] == [({}, 0.0)]
    assert collector.snapshot().samples["safetyamp_exporter_store_up"] == [({}, 1.0)]


def test_a_collection_is_reused_within_the_cache_window(synced):
    now = {"t": 0.0}
    opened = {"n": 0}

    def store():
        opened["n"] += 1
        raise ConnectionError("down")  # reopened on every collection: counts collections

    collector = SyncCollector(store, lambda: synced.run.instance, cache_seconds=15, clock=lambda: now["t"])
    collector.snapshot()
    now["t"] = 14.0
    collector.snapshot()
    assert opened["n"] == 1
    now["t"] = 15.0
    collector.snapshot()
    assert opened["n"] == 2


def _dagster_schedule(action: str, synced: Synced) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    subprocess.run(
        [str(dagster), "schedule", action, "safetyamp_sync_hourly", "-m", "safetyamp_pipeline.definitions"],
        env={**os.environ, "DAGSTER_HOME": synced.run.env["DAGSTER_HOME"]}, check=True, capture_output=True, timeout=300,
    )


def test_a_schedule_started_and_stopped_by_an_operator_is_reported_as_such(synced, capsys, monkeypatch):
    running = ("safetyamp_automation_running", (("name", "safetyamp_sync_hourly"), ("type", "schedule")))
    _dagster_schedule("start", synced)
    try:
        assert _parse(_once(synced, capsys, monkeypatch)[1])[running] == 1
    finally:
        _dagster_schedule("stop", synced)
    assert _parse(_once(synced, capsys, monkeypatch)[1])[running] == 0


@pytest.mark.parametrize("args", [["metrics"], ["metrics", "serve", "--once"], ["metrics", "serve", "--port", "70000"]])
def test_metrics_usage_errors_are_one_line_with_exit_2(args, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("safetyamp-pipeline: error: ") and len(err.strip().splitlines()) == 1


def test_a_part_that_fails_midway_reports_none_of_its_samples(synced):
    class BrokenRuns:
        def __init__(self, instance):
            self._instance = instance

        def __getattr__(self, name):
            return getattr(self._instance, name)

        def get_run_records(self, *args, **kwargs):
            raise ConnectionError("run storage down")

    collector = SyncCollector(lambda: synced.run.store, lambda: BrokenRuns(synced.run.instance), cache_seconds=0)
    samples = collector.snapshot().samples
    assert samples["safetyamp_exporter_instance_up"] == [({}, 0.0)]
    # The sinks were read before the runs failed; a half-read instance is not served as data.
    assert "safetyamp_sink_last_success_timestamp_seconds" not in samples
    assert samples["safetyamp_exporter_store_up"] == [({}, 1.0)] and "safetyamp_open_failures" in samples
