"""Alert sensor: posts failed runs, failing and recovered checks and stale sinks to a webhook.

``sync_alerts`` posts to ``SAFETYAMP_ALERT_WEBHOOK_URL``: plain JSON (text/title/link) by default,
a Slack message or a Teams Adaptive Card with ``SAFETYAMP_ALERT_FORMAT=slack|teams``. It carries
the run link, the check, counts and masked error text, never person data. Nothing is lost: every
message waits in the sensor's outbox (its cursor, see ``alert_outbox.py``) until the webhook
accepted it, and is retried on each tick up to ``SAFETYAMP_ALERT_MAX_ATTEMPTS`` times.

Why not ``@run_failure_sensor``: Dagster advances a run-status sensor's cursor past a run even when
the sensor function raises, so a failed POST there would lose the alert. This sensor reads the
same run-failure records (``instance.fetch_run_status_changes``, what run-status sensors use) and
moves its own cursor only together with the outbox that holds the message.

Repeated failures of the same job and step within an hour are sent as one message plus one summary
at the end of the hour. A check that starts failing and one that recovers both send a message; so
does a freshness state change of an asset with a time-window freshness policy (the sink assets).
"""

import os
from datetime import timedelta
from typing import Any

import dagster as dg

from safetyamp_pipeline.defs import alert_outbox
from safetyamp_pipeline.defs.alert_outbox import AlertState, Message
from safetyamp_pipeline.defs.automation import AUTOMATION_RUNNING
from safetyamp_pipeline.defs.safetyamp.freshness import PASS, UNKNOWN, freshness_state, policy_windows
from safetyamp_pipeline.sync.masking import mask_text

SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultSensorStatus.STOPPED
WEBHOOK_ENV = "SAFETYAMP_ALERT_WEBHOOK_URL"
WEBSERVER_URL_ENV = "SAFETYAMP_DAGSTER_URL"
MAX_ATTEMPTS_ENV = "SAFETYAMP_ALERT_MAX_ATTEMPTS"
FORMAT_ENV = "SAFETYAMP_ALERT_FORMAT"  # plain (default) | slack | teams
DEFAULT_MAX_ATTEMPTS = 30  # one a minute: half an hour of webhook outage is bridged
_RUN_FAILURES_PER_TICK = 100


def _link(path: str) -> str:
    base = os.environ.get(WEBSERVER_URL_ENV, "http://localhost:3000").rstrip("/")
    return f"{base}/{path}"


def _max_attempts() -> int:
    raw = os.environ.get(MAX_ATTEMPTS_ENV, "").strip()
    try:
        return max(int(raw), 1) if raw else DEFAULT_MAX_ATTEMPTS
    except ValueError:
        return DEFAULT_MAX_ATTEMPTS


def _first_line(text: str | None) -> str:
    return mask_text((text or "").strip().splitlines()[0] if (text or "").strip() else "")[:500]


def _run_failures(context: dg.SensorEvaluationContext, state: AlertState, now: float) -> None:
    records = context.instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=state.runs),
        limit=_RUN_FAILURES_PER_TICK,
        ascending=True,
    ).records
    for record in records:
        state.runs = max(state.runs or 0, record.storage_id)
        entry = record.event_log_entry
        event = entry.dagster_event
        data = event.event_specific_data if event is not None else None
        step_event = getattr(data, "first_step_failure_event", None)
        step = step_event.step_key if step_event is not None else None
        step_error = getattr(getattr(step_event, "event_specific_data", None), "error", None)
        lines = [f"Step `{step}` failed: {_first_line(step_error.message if step_error else None)}" if step else
                 _first_line(entry.message)]
        job = entry.job_name or "unknown job"
        message = Message(f"SafetyAmp sync run failed ({job})", lines, _link(f"runs/{entry.run_id}"))
        if state.group_failure(f"{job}:{step or ''}", message, now):
            state.enqueue(message, context.log)


def _check_changes(context: dg.SensorEvaluationContext, state: AlertState, baseline: bool) -> None:
    graph = context.repository_def.asset_graph if context.repository_def else None
    for check_key in sorted(graph.asset_check_keys if graph else [], key=str):
        record = context.instance.get_latest_asset_check_evaluation_record(check_key)
        if record is None or record.status.value not in ("SUCCEEDED", "FAILED"):
            continue
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        status, previous = record.status.value, state.checks.get(name)
        state.checks[name] = status
        if baseline or status == previous or previous is None and status == "SUCCEEDED":
            continue
        link = _link(f"runs/{record.run_id}")
        if status == "SUCCEEDED":
            state.enqueue(Message("SafetyAmp check recovered", [f"Check `{name}` passes again."], link), context.log)
            continue
        event = record.event.dagster_event if record.event else None
        evaluation = event.event_specific_data if event else None
        severity = getattr(getattr(evaluation, "severity", None), "value", None)
        lines = [f"Check `{name}` started failing" + (f" ({severity})." if severity else ".")]
        metadata = getattr(evaluation, "metadata", None) or {}
        lines += [f"{k}: {v.value}" for k, v in metadata.items() if type(v.value) in (int, float)]
        state.enqueue(Message("SafetyAmp check failing", lines, link), context.log)


def _freshness_changes(context: dg.SensorEvaluationContext, state: AlertState, baseline: bool, now: float) -> None:
    graph = context.repository_def.asset_graph if context.repository_def else None
    for key in sorted(graph.materializable_asset_keys if graph else [], key=lambda k: k.to_user_string()):
        windows = policy_windows(graph.get(key).freshness_policy) if graph else None
        if windows is None:
            continue
        event = context.instance.get_latest_materialization_event(key)
        current = freshness_state(windows, event.timestamp if event else None, now)
        name = key.to_user_string()
        previous = state.freshness.get(name)
        state.freshness[name] = current
        first_seen_fresh = previous in (None, UNKNOWN) and current == PASS
        if baseline or current in (UNKNOWN, previous) or first_seen_fresh:
            continue
        link = _link(f"assets/{'/'.join(key.path)}")
        if current == PASS:
            state.enqueue(Message("SafetyAmp sink fresh again", [f"`{name}` was materialized again."], link), context.log)
            continue
        age = timedelta(seconds=int(now - event.timestamp)) if event else None
        warn, fail = windows
        window = fail if current == "FAIL" else warn
        state.enqueue(Message(
            f"SafetyAmp sink stale ({current})",
            [f"`{name}` last succeeded {age} ago (freshness {current.lower()} window {window})."],
            link,
        ), context.log)


@dg.sensor(
    name="sync_alerts",
    minimum_interval_seconds=60,
    default_status=SENSOR_STATUS,
    description="Posts failed runs, failing/recovered checks and stale sinks to SAFETYAMP_ALERT_WEBHOOK_URL; "
    "retries until the webhook accepts.",
)
def sync_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return dg.SensorResult(skip_reason=f"{WEBHOOK_ENV} is not set: alerts are off.")
    style = os.environ.get(FORMAT_ENV, "").strip().lower() or "plain"
    if style not in alert_outbox.STYLES:
        raise ValueError(f"{FORMAT_ENV}={style!r} is not one of {', '.join(alert_outbox.STYLES)}")
    now = alert_outbox.clock()
    loaded = AlertState.from_cursor(context.cursor)
    baseline = loaded is None  # first tick: remember where things stand, alert only on what comes next
    state = loaded or AlertState()
    if baseline:
        latest = context.instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
        state.runs = latest[0].storage_id if latest else 0
    else:
        _run_failures(context, state, now)
    for grouped in state.due_summaries(now):
        state.enqueue(grouped, context.log)
    _check_changes(context, state, baseline)
    _freshness_changes(context, state, baseline, now)

    waiting = len(state.outbox)
    sent = state.deliver(url, context.log, _max_attempts(), style) if waiting else 0
    counts: dict[str, Any] = {"sent": sent, "waiting": len(state.outbox), "dropped so far": state.dropped}
    reason = "Nothing to alert on." if not waiting else ", ".join(f"{k}: {v}" for k, v in counts.items()) + "."
    return dg.SensorResult(skip_reason=reason, cursor=state.to_cursor())
