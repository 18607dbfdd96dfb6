"""Vista change sensor (alerting lives in ``alerts.py``).

``vista_change_sensor`` runs one cheap fingerprint query per Vista table (never a SafetyAmp call)
and requests an employee sync when the employee tables changed.
"""


import hashlib
import json

import dagster as dg

from safetyamp_pipeline.clients.resources import VistaResource
from safetyamp_pipeline.defs.automation import (
    AUTOMATION_RUNNING,
    safetyamp_employee_sync,
    sync_lane_busy_reason,
)
from safetyamp_pipeline.sync.calendar import current_week_key

EMPLOYEE_TABLES = ("bPREH", "bPRJC")
SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultSensorStatus.STOPPED


def _digest(fingerprints: dict[str, str], tables: tuple[str, ...]) -> str:
    body = json.dumps({t: fingerprints.get(t) for t in tables}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dg.sensor(
    name="vista_change_sensor",
    job=safetyamp_employee_sync,
    minimum_interval_seconds=300,
    default_status=SENSOR_STATUS,
    description="Requests an employee sync when Vista's employee or payroll tables change.",
)
def vista_change_sensor(context: dg.SensorEvaluationContext, vista: VistaResource) -> dg.SensorResult:
    # While a sync runs, Vista is not even looked at and the cursor stays: a change made meanwhile
    # is still seen (and synced) on the first tick after that run.
    busy = sync_lane_busy_reason(context.instance)
    if busy:
        return dg.SensorResult(skip_reason=busy)
    fingerprints = vista.get_client().fingerprints()
    digest = _digest(fingerprints, EMPLOYEE_TABLES)
    previous = json.loads(context.cursor) if context.cursor else None
    cursor = json.dumps({"digest": digest, "tables": fingerprints}, sort_keys=True)
    if previous is None:
        return dg.SensorResult(skip_reason="First look at Vista: fingerprint recorded.", cursor=cursor)
    if previous.get("digest") == digest:
        return dg.SensorResult(skip_reason="Vista employee data unchanged.", cursor=cursor)
    changed = [t for t in EMPLOYEE_TABLES if previous.get("tables", {}).get(t) != fingerprints.get(t)]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"vista-{digest}",
                partition_key=current_week_key(),
                tags={"safetyamp/trigger": "vista_change", "safetyamp/changed_tables": ",".join(changed)},
            )
        ],
        cursor=cursor,
    )
