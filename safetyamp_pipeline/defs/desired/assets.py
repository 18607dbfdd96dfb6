"""Desired SafetyAmp state: pure `core/` functions of the source tables, keyed by natural keys.

Records that cannot be sent stay in the value with their reason (``rejected``), so the checks, the
sinks and ``safetyamp-pipeline explain`` can all show why.
"""


from collections import Counter
from collections.abc import Sequence

import dagster as dg

from safetyamp_pipeline.clients.resources import SyncSettingsResource, SyncStoreResource
from safetyamp_pipeline.core import desired as core_desired
from safetyamp_pipeline.core.models import DesiredSet, record_to_row
from safetyamp_pipeline.defs.sources.store_guard import guarded_store
from safetyamp_pipeline.sync.calendar import lookback_keys, today_in_payroll_tz
from safetyamp_pipeline.sync.masking import mask_record, mask_text
from safetyamp_pipeline.sync.metadata import metadata_table
from safetyamp_pipeline.sync.rejections import REJECTION_COLUMNS, fields_named, table_rows

DESIRED_ISSUES_SUFFIX = "__issues"


REJECTED_CHECK = "rejected_before_send"
WARN_COLUMNS = ("key", "reason")


def _check(name: str, entity: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=["desired", entity])


def _checks(entity: str, *names: str) -> list[dg.AssetCheckSpec]:
    """Every desired asset reports the records it holds back (``rejected_before_send``) and why."""
    return [_check(REJECTED_CHECK, entity), *(_check(n, entity) for n in names)]


def _rejected_check(desired: DesiredSet, description: str = "Records that cannot be sent to SafetyAmp, and why.") -> dg.AssetCheckResult:
    rows = [{"key": r.key, "fields": fields_named(r.rejected), "reason": r.rejected} for r in desired.records if r.rejected]
    return dg.AssetCheckResult(
        check_name=REJECTED_CHECK,
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"count": dg.MetadataValue.int(len(rows)), "rejected": metadata_table(table_rows(rows), REJECTION_COLUMNS)},
    )


def _rejected_rows(desired: DesiredSet) -> list[dict]:
    return [{"key": r.key, "reason": mask_text(r.rejected or "")} for r in desired.records if r.rejected]


def _issue_rows(desired: DesiredSet, *, field: str | None = None, contains: str = "") -> list[dict]:
    return [
        {"key": i.key, "reason": mask_text(i.message)}
        for i in desired.issues
        if (field is None or i.field == field) and contains.lower() in i.message.lower()
    ]


def _warn(check_name: str, rows: list[dict], description: str, columns: Sequence[str] = WARN_COLUMNS) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"count": dg.MetadataValue.int(len(rows)), "records": metadata_table(rows, columns)},
    )


def _save(context: dg.AssetExecutionContext, store: SyncStoreResource, entity: str, desired: DesiredSet) -> dict:
    run_id = context.run.run_id
    with guarded_store(f"desired/{entity}"):
        sync_store = store.get_store()
        sync_store.save_asset_value(f"desired/{entity}", [record_to_row(r) for r in desired.records], run_id=run_id)
        sync_store.save_asset_value(
            f"desired/{entity}{DESIRED_ISSUES_SUFFIX}", [i.to_row() for i in desired.issues], run_id=run_id
        )
    rejected = sum(1 for r in desired.records if r.rejected)
    deactivate = sum(1 for r in desired.records if r.deactivate and not r.rejected)
    context.log.info(
        "desired/%s: %d records (%d rejected before send, %d to deactivate), %d issues",
        entity, len(desired.records), rejected, deactivate, len(desired.issues),
    )
    preview = [
        {"key": r.key, **mask_record(r.fields), **{f"ref:{k}": v for k, v in r.refs.items()}, "rejected": r.rejected or ""}
        for r in desired.records[:10]
    ]
    return {
        "dagster/row_count": dg.MetadataValue.int(len(desired.records)),
        "rejected_before_send": dg.MetadataValue.int(rejected),
        "to_deactivate": dg.MetadataValue.int(deactivate),
        "issues": dg.MetadataValue.int(len(desired.issues)),
        "preview": metadata_table(preview, limit=10),
    }


def _load(context: dg.AssetExecutionContext, store: SyncStoreResource, key: str) -> list[dict]:
    """The value of `key` accepted in this run, else the last accepted one (never a value whose
    blocking check failed, in this run or another)."""
    with guarded_store(f"desired/{context.asset_key.path[-1]}"):
        return store.get_store().load_asset_value(key, run_id=context.run.run_id)


@dg.asset(
    key=["desired", "site_clusters"],
    group_name="desired",
    kinds={"python"},
    deps=[["viewpoint", "departments"]],
    description="Cluster tree: root → one cluster per region → one cluster per PR department.",
    check_specs=_checks("site_clusters"),
)
def desired_site_clusters(
    context: dg.AssetExecutionContext, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    desired = core_desired.desired_site_clusters(_load(context, store, "viewpoint/departments"), sync_settings.settings())
    return dg.MaterializeResult(metadata=_save(context, store, "site_clusters", desired), check_results=[_rejected_check(desired)])


@dg.asset(
    key=["desired", "sites"],
    group_name="desired",
    kinds={"python"},
    deps=[["viewpoint", "jobs"], ["viewpoint", "departments"]],
    description="One site per open job (ext_id = trimmed job number) under its department's cluster.",
    check_specs=_checks("sites", "jobs_without_cluster"),
)
def desired_sites(
    context: dg.AssetExecutionContext, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    desired = core_desired.desired_sites(
        _load(context, store, "viewpoint/jobs"), _load(context, store, "viewpoint/departments"), sync_settings.settings()
    )
    no_cluster = [row for row in _rejected_rows(desired) if "cluster" in row["reason"].lower()]
    no_cluster += _issue_rows(desired, contains="cluster")
    return dg.MaterializeResult(
        metadata=_save(context, store, "sites", desired),
        check_results=[
            _rejected_check(desired),
            _warn("jobs_without_cluster", no_cluster, "Open jobs whose contract department has no cluster get no site."),
        ],
    )


@dg.asset(
    key=["desired", "titles"],
    group_name="desired",
    kinds={"python"},
    deps=[["viewpoint", "employees"]],
    description="User titles from udEmpTitle (trimmed, spaces collapsed, most common spelling).",
    check_specs=_checks("titles"),
)
def desired_titles(
    context: dg.AssetExecutionContext, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    desired = core_desired.desired_titles(_load(context, store, "viewpoint/employees"), sync_settings.settings())
    return dg.MaterializeResult(metadata=_save(context, store, "titles", desired), check_results=[_rejected_check(desired)])


def load_lookback_payroll(store: SyncStoreResource, weeks: int, run_id: str | None = None) -> list[dict]:
    with guarded_store("desired/users"):
        sync_store = store.get_store()
        stored = set(sync_store.asset_partitions("viewpoint/job_assignments"))
        keys = [k for k in lookback_keys(today_in_payroll_tz(), weeks) if k in stored]
        return sync_store.load_asset_partitions("viewpoint/job_assignments", keys, run_id=run_id) if keys else []


def _duplicate_rows(records: Sequence, field: str) -> list[dict]:
    values = Counter(r.fields.get(field) for r in records if r.fields.get(field))
    return [
        {"key": r.key, "field": field, "value": mask_record({field: r.fields.get(field)})[field]}
        for r in records
        if r.fields.get(field) and values[r.fields.get(field)] > 1
    ]


@dg.asset(
    key=["desired", "users"],
    group_name="desired",
    kinds={"python"},
    deps=[["viewpoint", "employees"], ["viewpoint", "job_assignments"], ["entra", "users"], ["viewpoint", "jobs"], ["viewpoint", "departments"]],
    description="One user per active employee (emp_id), a deactivation intent per terminated one; "
    "email from Entra when it matches, home site from the latest job in the look-back window.",
    check_specs=_checks("users", "duplicate_emails_and_phones", "home_site_fallbacks"),
)
def desired_users(
    context: dg.AssetExecutionContext, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    settings = sync_settings.settings()
    desired = core_desired.desired_users(
        _load(context, store, "viewpoint/employees"),
        load_lookback_payroll(store, settings.lookback_weeks, context.run.run_id),
        _load(context, store, "entra/users"),
        _load(context, store, "viewpoint/jobs"),
        _load(context, store, "viewpoint/departments"),
        settings,
        today_in_payroll_tz(),
    )
    rejected = _rejected_rows(desired)
    duplicates = [r for r in rejected if "duplicate" in r["reason"].lower() or "already" in r["reason"].lower()]
    duplicates += _issue_rows(desired, field="mobile_phone")
    home = [r for r in rejected if "home site" in r["reason"].lower()] + _issue_rows(desired, contains="home site")
    return dg.MaterializeResult(
        metadata=_save(context, store, "users", desired),
        check_results=[
            _rejected_check(desired, "Employees that cannot be sent to SafetyAmp, and why."),
            _warn("duplicate_emails_and_phones", duplicates, "Duplicated e-mails (rejected) and mobile phones (dropped)."),
            _warn("home_site_fallbacks", home, "Employees without a job in the look-back window (region office or unresolved)."),
        ],
    )


@dg.asset(
    key=["desired", "assets"],
    group_name="desired",
    kinds={"python"},
    deps=[["samsara", "vehicles"]],
    description="One asset per Samsara vehicle (by serial), active; the driver linked by employee number.",
    check_specs=_checks("assets", "vehicles_without_serial"),
)
def desired_assets(
    context: dg.AssetExecutionContext, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    desired = core_desired.desired_assets(_load(context, store, "samsara/vehicles"), sync_settings.settings())
    no_serial = [r for r in _rejected_rows(desired) if "serial" in r["reason"].lower()]
    return dg.MaterializeResult(
        metadata=_save(context, store, "assets", desired),
        check_results=[
            _rejected_check(desired),
            _warn("vehicles_without_serial", no_serial, "Vehicles without a serial cannot be matched."),
        ],
    )
