"""Jobs and schedules.

``safetyamp_sync`` materializes the whole graph with its checks in one process (one pod on
Kubernetes); ``safetyamp_reconcile`` does the same after a full SafetyAmp read (drift repair);
``safetyamp_employee_sync`` is the employee branch alone, launched by ``vista_change_sensor``.
Schedules run in production and start STOPPED in the sandbox; stopping them is how an operator
pauses the sync.
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
    description="One complete sync: sources, desired state, SafetyAmp sinks and every check.",
)

safetyamp_reconcile = dg.define_asset_job(
    "safetyamp_reconcile",
    selection=dg.AssetSelection.all(include_sources=False),
    executor_def=dg.in_process_executor,
    tags={FULL_READ_TAG: "true"},
    description="A sync that first reads SafetyAmp in full, finding and repairing drift.",
)

safetyamp_employee_sync = dg.define_asset_job(
    "safetyamp_employee_sync",
    selection=EMPLOYEE_BRANCH,
    executor_def=dg.in_process_executor,
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
def safetyamp_sync_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
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
def safetyamp_reconcile_nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=None, partition_key=current_week_key(), tags={"safetyamp/trigger": "schedule"})
