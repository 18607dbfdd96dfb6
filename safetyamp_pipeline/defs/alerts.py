"""Alert sensor: posts failed sync runs and checks that start failing to a webhook.

``sync_alerts`` posts to ``SAFETYAMP_ALERT_WEBHOOK_URL`` (Teams/Slack-compatible JSON) when a sync
run fails or a check starts failing; it carries the run link, the check and counts, never person data.
"""

import json
import os
from typing import Any

import dagster as dg

from safetyamp_pipeline.defs.automation import AUTOMATION_RUNNING
from safetyamp_pipeline.sync.masking import mask_text

SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultSensorStatus.STOPPED
WEBHOOK_ENV = "SAFETYAMP_ALERT_WEBHOOK_URL"
WEBSERVER_URL_ENV = "SAFETYAMP_DAGSTER_URL"


def _post(url: str, message: dict[str, Any]) -> None:
    import requests

    response = requests.post(url, json=message, timeout=(5, 15))
    response.raise_for_status()


def _run_link(run_id: str) -> str:
    base = os.environ.get(WEBSERVER_URL_ENV, "http://localhost:3000").rstrip("/")
    return f"{base}/runs/{run_id}"


def _message(title: str, lines: list[str], link: str) -> dict[str, Any]:
    text = "\n".join([f"**{title}**", *lines, link])
    # "text" is what both Slack incoming webhooks and Teams (Office 365 connector / workflows) show.
    return {"text": text, "title": title, "link": link}


@dg.sensor(
    name="sync_alerts",
    minimum_interval_seconds=60,
    default_status=SENSOR_STATUS,
    description="Posts failed runs and checks that start failing to SAFETYAMP_ALERT_WEBHOOK_URL.",
)
def sync_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return dg.SensorResult(skip_reason=f"{WEBHOOK_ENV} is not set: alerts are off.")
    state = json.loads(context.cursor) if context.cursor else {}
    first_tick = not state
    run_cursor = state.get("runs")
    checks: dict[str, str] = state.get("checks", {})
    messages: list[dict[str, Any]] = []

    failures = context.instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=run_cursor),
        limit=100,
        ascending=True,
    ).records
    for record in failures:
        run_cursor = max(run_cursor or 0, record.storage_id)
        if first_tick:
            continue  # first tick: remember where we are, alert only on what comes next
        entry = record.event_log_entry
        description = mask_text(entry.message or "")[:500]
        messages.append(_message(f"SafetyAmp sync run failed ({entry.job_name})", [description], _run_link(entry.run_id)))

    # Check states come from each check's latest execution (works on every event-log storage,
    # run-sharded SQLite included); an alert fires on the change to failing, not on every failure.
    check_keys = list(context.repository_def.asset_graph.asset_check_keys) if context.repository_def else []
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
    for check_key, execution in latest.items():
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        status = execution.status.value
        if status not in ("SUCCEEDED", "FAILED"):
            continue
        previous = checks.get(name)
        checks[name] = status
        if first_tick or status != "FAILED" or previous == "FAILED":
            continue
        evaluation = execution.event.dagster_event.event_specific_data if execution.event and execution.event.dagster_event else None
        lines = [f"Check `{name}` started failing" + (f" ({evaluation.severity.value})." if evaluation else ".")]
        if evaluation is not None:
            lines += [f"{k}: {v.value}" for k, v in evaluation.metadata.items() if type(v.value) in (int, float)]
        messages.append(_message("SafetyAmp check failing", lines, _run_link(execution.run_id)))

    sent = 0
    for message in messages:
        try:
            _post(url, message)
            sent += 1
        except Exception as exc:  # an unreachable webhook must not stop the sensor
            context.log.warning("Alert webhook failed: %s", type(exc).__name__)
    cursor = json.dumps({"runs": run_cursor or 0, "checks": checks})
    if not messages:
        return dg.SensorResult(skip_reason="Nothing to alert on.", cursor=cursor)
    return dg.SensorResult(skip_reason=f"Sent {sent} of {len(messages)} alerts.", cursor=cursor)
