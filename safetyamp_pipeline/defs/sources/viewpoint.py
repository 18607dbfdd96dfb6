"""Extract assets for Viewpoint Vista, with the source checks that guard everything downstream."""


from collections import Counter
from datetime import timedelta

import dagster as dg

from safetyamp_pipeline.clients.resources import SyncSettingsResource, SyncStoreResource, VistaResource
from safetyamp_pipeline.core.rows import is_active_employee
from safetyamp_pipeline.defs.sources.retry import SOURCE_RETRY
from safetyamp_pipeline.defs.sources.schema import (
    DEPARTMENTS_SCHEMA,
    EMPLOYEES_SCHEMA,
    JOB_ASSIGNMENTS_SCHEMA,
    JOBS_SCHEMA,
    table_metadata,
)
from safetyamp_pipeline.defs.sources.store_guard import guarded_store
from safetyamp_pipeline.sync.calendar import PAYROLL_WEEKS, today_in_payroll_tz, week_bounds, weeks_to_load
from safetyamp_pipeline.sync.count_guard import check_count
from safetyamp_pipeline.sync.metadata import metadata_table, source_metadata

SOURCE_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3))
EMPLOYEE_BASELINE_KEY = "checks/viewpoint_employees_active_baseline"
ALLOW_EMPLOYEE_DROP_TAG = "allow_employee_drop"


def _trimmed(value: object) -> str:
    return str(value).strip() if value is not None else ""


@dg.asset(
    key=["viewpoint", "departments"],
    group_name="viewpoint",
    kinds={"sqlserver"},
    description="PR departments (bPRDP) with their region (udRegion).",
    freshness_policy=SOURCE_FRESHNESS,
    retry_policy=SOURCE_RETRY,
)
def viewpoint_departments(
    context: dg.AssetExecutionContext, vista: VistaResource, store: SyncStoreResource
) -> dg.MaterializeResult:
    rows = vista.get_client().departments()
    with guarded_store("viewpoint/departments"):
        store.get_store().save_asset_value("viewpoint/departments", rows, run_id=context.run.run_id)
    context.log.info("Read %d departments from Vista", len(rows))
    return dg.MaterializeResult(metadata={**source_metadata(rows), **table_metadata(DEPARTMENTS_SCHEMA, len(rows))})


@dg.asset(
    key=["viewpoint", "jobs"],
    group_name="viewpoint",
    kinds={"sqlserver"},
    description="Open jobs (bJCJM, JobStatus 1) with their contract's department (bJCCM).",
    freshness_policy=SOURCE_FRESHNESS,
    retry_policy=SOURCE_RETRY,
    check_specs=[dg.AssetCheckSpec("job_numbers_unique", asset=["viewpoint", "jobs"])],
)
def viewpoint_jobs(
    context: dg.AssetExecutionContext, vista: VistaResource, store: SyncStoreResource
) -> dg.MaterializeResult:
    rows = vista.get_client().open_jobs()
    with guarded_store("viewpoint/jobs"):
        store.get_store().save_asset_value("viewpoint/jobs", rows, run_id=context.run.run_id)
    counts = Counter(_trimmed(r.get("Job")) for r in rows)
    duplicates = sorted(job for job, n in counts.items() if n > 1)
    context.log.info("Read %d open jobs from Vista", len(rows))
    return dg.MaterializeResult(
        metadata={**source_metadata(rows), **table_metadata(JOBS_SCHEMA, len(rows))},
        check_results=[
            dg.AssetCheckResult(
                check_name="job_numbers_unique",
                passed=not duplicates,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"duplicates": len(duplicates), "jobs": ", ".join(duplicates[:50])},
                description="Job numbers are unique after trimming.",
            )
        ],
    )


def _active_count(rows: list[dict]) -> int:
    """Active as the sync treats them (a rehire whose old TermDate was left in place is active)."""
    return sum(1 for r in rows if is_active_employee(r))


@dg.asset(
    key=["viewpoint", "employees"],
    group_name="viewpoint",
    kinds={"sqlserver"},
    description="Active employees and terminated ones (bPREH) of the PR company.",
    freshness_policy=SOURCE_FRESHNESS,
    retry_policy=SOURCE_RETRY,
    check_specs=[
        dg.AssetCheckSpec("employee_numbers_unique", asset=["viewpoint", "employees"]),
        dg.AssetCheckSpec("names_present", asset=["viewpoint", "employees"]),
        dg.AssetCheckSpec(
            "active_count_stable",
            asset=["viewpoint", "employees"],
            blocking=True,
            description="Blocks the sync when active employees fell by more than the configured share "
            "since the last accepted read (a broken query must never deactivate everyone).",
        ),
    ],
)
def viewpoint_employees(
    context: dg.AssetExecutionContext,
    vista: VistaResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> dg.MaterializeResult:
    rows = vista.get_client().employees(term_window_days=sync_settings.terminated_window_days)
    run_id = context.run.run_id
    active = _active_count(rows)
    context.log.info("Read %d employees from Vista (%d active)", len(rows), active)

    numbers = Counter(r.get("Employee") for r in rows)
    duplicate_numbers = sorted(str(n) for n, c in numbers.items() if c > 1)
    nameless = [str(r.get("Employee")) for r in rows if not _trimmed(r.get("FirstName")) or not _trimmed(r.get("LastName"))]

    allowed_drop = sync_settings.employee_drop_share
    # Saved as pending first: only a read the guard accepts becomes a value desired/* can load.
    with guarded_store("viewpoint/employees"):
        sync_store = store.get_store()
        sync_store.save_asset_value("viewpoint/employees", rows, run_id=run_id, accept=False)
        guard = check_count(
            sync_store, EMPLOYEE_BASELINE_KEY, "active", active, allowed_drop=allowed_drop,
            overridden=context.run.tags.get(ALLOW_EMPLOYEE_DROP_TAG, "").lower() == "true", run_id=run_id,
        )
        if guard.stable:
            sync_store.accept_asset_value("viewpoint/employees", run_id)
    baseline, overridden, stable = guard.baseline, guard.overridden, guard.stable
    drop_text = (
        f"{active} active employees; last accepted read had {baseline}."
        if baseline is not None
        else f"{active} active employees; first read, accepted as the baseline."
    )
    if not stable:
        context.log.error(
            "Active employees fell from %s to %d (more than %.0f%%): the sync stops before any write. "
            "Fix the source, or re-run with tag %s=true if the drop is real.",
            baseline, active, allowed_drop * 100, ALLOW_EMPLOYEE_DROP_TAG,
        )
    return dg.MaterializeResult(
        metadata={
            **source_metadata(rows, active=dg.MetadataValue.int(active), terminated=len(rows) - active),
            **table_metadata(EMPLOYEES_SCHEMA, len(rows)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="employee_numbers_unique",
                passed=not duplicate_numbers,
                metadata={"duplicates": len(duplicate_numbers), "employees": ", ".join(duplicate_numbers[:50])},
            ),
            dg.AssetCheckResult(
                check_name="names_present",
                passed=not nameless,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"without_name": len(nameless), "employees": ", ".join(nameless[:50])},
            ),
            dg.AssetCheckResult(
                check_name="active_count_stable",
                passed=stable,
                metadata={
                    "active": active,
                    "baseline": baseline if baseline is not None else -1,
                    "allowed_drop_share": allowed_drop,
                    "overridden": overridden,
                },
                description=drop_text,
            ),
        ],
    )


def _weeks_to_load(context: dg.AssetExecutionContext, stored: set[str], lookback_weeks: int) -> list[str]:
    valid = set(PAYROLL_WEEKS.get_partition_keys(dynamic_partitions_store=context.instance))
    return weeks_to_load(list(context.partition_keys), stored, lookback_weeks, today_in_payroll_tz(), valid)


@dg.asset(
    key=["viewpoint", "job_assignments"],
    group_name="viewpoint",
    kinds={"sqlserver"},
    partitions_def=PAYROLL_WEEKS,
    # A backfill of many weeks is one run (one pod, one Vista connection), not one run per week.
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=SOURCE_RETRY,
    description="Hours per employee and job (bPRJC) by payroll week; the current week's run also "
    "refreshes the previous week and fills the look-back window. A backfill loads its whole range "
    "in one run.",
)
def viewpoint_job_assignments(
    context: dg.AssetExecutionContext,
    vista: VistaResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> dg.MaterializeResult:
    client = vista.get_client()
    with guarded_store("viewpoint/job_assignments"):
        sync_store = store.get_store()
        stored = set(sync_store.asset_partitions("viewpoint/job_assignments"))
    own = set(context.partition_keys)
    weeks = _weeks_to_load(context, stored, sync_settings.lookback_weeks)
    loaded: list[dict] = []
    own_rows: list[dict] = []
    for week in weeks:
        start, end = week_bounds(week)
        rows = client.payroll_rows(start, end)
        with guarded_store("viewpoint/job_assignments"):
            sync_store.save_asset_value("viewpoint/job_assignments", rows, partition=week, run_id=context.run.run_id)
        loaded.append({"week": week, "rows": len(rows)})
        if week in own:
            own_rows.extend(rows)
        else:  # a look-back week the current week's run filled in
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=context.asset_key,
                    partition=week,
                    metadata={
                        **table_metadata(JOB_ASSIGNMENTS_SCHEMA, len(rows)),
                        "loaded_by_run_of": ", ".join(sorted(own))[:200],
                    },
                )
            )
    context.log.info("Loaded payroll weeks %s", ", ".join(f"{w['week']} ({w['rows']} rows)" for w in loaded))
    weeks_table = metadata_table(loaded, ["week", "rows"], limit=None)
    if len(own) == 1:
        return dg.MaterializeResult(
            metadata={
                **source_metadata(own_rows, weeks_loaded=weeks_table),
                **table_metadata(JOB_ASSIGNMENTS_SCHEMA, len(own_rows)),
            }
        )
    # One result for several partitions: a row count would be read as each week's, so none.
    return dg.MaterializeResult(
        metadata={
            "weeks_loaded": weeks_table,
            "range_rows": dg.MetadataValue.int(sum(w["rows"] for w in loaded)),
            **table_metadata(JOB_ASSIGNMENTS_SCHEMA, None),
        }
    )
