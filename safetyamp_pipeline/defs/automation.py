"""Jobs and schedules.

``safetyamp_sync`` materializes the whole graph with its checks in one process (one pod on
Kubernetes); ``safetyamp_reconcile`` does the same after a full SafetyAmp read (drift repair);
``safetyamp_employee_sync`` is the employee branch alone, launched by ``vista_change_sensor``.
Schedules run in production and start STOPPED in the sandbox; stopping them is how an operator
pauses the sync.

One sync at a time: every sync job carries ``SYNC_LANE_TAGS`` (the run queue admits one run with
that tag, dagster.yaml / helm-values), and the schedules and the Vista sensor skip, naming the run,
while a sync-lane run is queued or running, so hourly runs do not pile up behind a multi-hour
initial load. Every job has a maximum runtime (``dagster/max_runtime``, enforced by run monitoring).
"""


import os

import dagster as dg

from safetyamp_pipeline.defs.resources import AUTOMATION_RUNNING
from safetyamp_pipeline.defs.safetyamp.sinks import FULL_READ_TAG
from safetyamp_pipeline.sync.calendar import current_week_key

SCHEDULE_STATUS = dg.DefaultScheduleStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultScheduleStatus.STOPPED
SCHEDULE_TIMEZONE = os.environ.get("SAFETYAMP_SCHEDULE_TIMEZONE", "America/Chicago")
SYNC_CRON = os.environ.get("SAFETYAMP_SYNC_CRON", "0 * * * *")
RECONCILE_CRON = os.environ.get("SAFETYAMP_RECONCILE_CRON", "30 2 * * *")

SYNC_LANE_TAG = "safetyamp/lane"
SYNC_LANE_TAGS: dict[str, str] = {SYNC_LANE_TAG: "sync"}
MAX_RUNTIME_TAG = "dagster/max_runtime"
HOUR = 3600
# Sized for a first load of 20,000 employees: ~22,800 writes at the default SafetyAmp budget of
# 60 requests a minute is ~6.3 h; 8 h leaves room for Vista/Graph reads and 429 back-offs.
SYNC_MAX_RUNTIME_SECONDS = 8 * HOUR
# A reconcile reads SafetyAmp in full and repairs drift; after a restore or on an empty tenant it
# can rewrite as much as a first load, so it gets the same bound.
RECONCILE_MAX_RUNTIME_SECONDS = 8 * HOUR
# The employee branch alone: normally minutes, but when it is the first run on an empty tenant it
# creates every user (~20,000 POSTs, ~5.6 h at 60 a minute).
EMPLOYEE_SYNC_MAX_RUNTIME_SECONDS = 8 * HOUR
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def job_tags(max_runtime_seconds: int, **extra: str) -> dict[str, str]:
    return {**SYNC_LANE_TAGS, MAX_RUNTIME_TAG: str(max_runtime_seconds), **extra}


def active_sync_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """The oldest sync-lane run that is queued or running, if any."""
    records = instance.get_run_records(dg.RunsFilter(tags=SYNC_LANE_TAGS, statuses=ACTIVE_RUN_STATUSES))
    return records[-1].dagster_run if records else None


def sync_lane_busy_reason(instance: dg.DagsterInstance) -> str | None:
    run = active_sync_run(instance)
    if run is None:
        return None
    return (
        f"Sync run {run.run_id} ({run.job_name}) is {run.status.value.lower()}; one sync at a time, "
        "so this tick is skipped."
    )


EMPLOYEE_BRANCH = dg.AssetSelection.assets(
    ["viewpoint", "employees"],
    ["viewpoint", "job_assignments"],
    ["entra", "users"],
    ["desired", "titles"],
    ["desired", "users"],
    ["safetyamp", "user_titles"],
    ["safetyamp", "users"],
)

safetyamp_sync = dg.define_asset_job(
    "safetyamp_sync",
    selection=dg.AssetSelection.all(include_sources=False),
    executor_def=dg.in_process_executor,
    tags=job_tags(SYNC_MAX_RUNTIME_SECONDS),
    description="One complete sync: sources, desired state, SafetyAmp sinks and every check.",
)

safetyamp_reconcile = dg.define_asset_job(
    "safetyamp_reconcile",
    selection=dg.AssetSelection.all(include_sources=False),
    executor_def=dg.in_process_executor,
    tags=job_tags(RECONCILE_MAX_RUNTIME_SECONDS, **{FULL_READ_TAG: "true"}),
    description="A sync that first reads SafetyAmp in full, finding and repairing drift.",
)

safetyamp_employee_sync = dg.define_asset_job(
    "safetyamp_employee_sync",
    selection=EMPLOYEE_BRANCH,
    executor_def=dg.in_process_executor,
    tags=job_tags(EMPLOYEE_SYNC_MAX_RUNTIME_SECONDS),
    description="Employees only (titles and users), launched when Vista's employee data changes.",
)


@dg.schedule(
    name="safetyamp_sync_hourly",
    cron_schedule=SYNC_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    job=safetyamp_sync,
    default_status=SCHEDULE_STATUS,
    description="The regular sync (the current payroll week's partition).",
)
def safetyamp_sync_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    busy = sync_lane_busy_reason(context.instance)
    if busy:
        return dg.SkipReason(busy)
    week = current_week_key()
    return dg.RunRequest(run_key=None, partition_key=week, tags={"safetyamp/trigger": "schedule"})


@dg.schedule(
    name="safetyamp_reconcile_nightly",
    cron_schedule=RECONCILE_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    job=safetyamp_reconcile,
    default_status=SCHEDULE_STATUS,
    description="Nightly full read of SafetyAmp and repair of any drift.",
)
def safetyamp_reconcile_nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    busy = sync_lane_busy_reason(context.instance)
    if busy:
        return dg.SkipReason(busy)
    return dg.RunRequest(run_key=None, partition_key=current_week_key(), tags={"safetyamp/trigger": "schedule"})
