"""Job ``safetyamp_provision_on_demand`` (DESIGN §6): sync exactly the named records now.

Run config ``ops: {provision_on_demand: {config: {employees: [str], jobs: [str], vehicles: [str],
dry_run: bool}}}`` (lists default empty, ``dry_run`` false). Source rows are read fresh (Vista
employees / jobs and departments, the Samsara vehicle list); the rest of what the rules need
(payroll weeks, Entra users, driver links) is the last sync's stored values. SafetyAmp is read one
GET per named record. Jobs go first (a new employee's home site may be one of them), then
employees, then vehicles. The run carries ``safetyamp/lane: sync``: it queues behind a running sync;
and it writes while holding the sinks' write lease (`sync.write_lease`).
"""

from typing import Any

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from safetyamp_pipeline.clients.errors import ApiError, Forbidden, Unauthorized
from safetyamp_pipeline.clients.resources import (
    SafetyAmpResource,
    SamsaraResource,
    SyncSettingsResource,
    SyncStoreResource,
    VistaResource,
)
from safetyamp_pipeline.core import desired as core_desired
from safetyamp_pipeline.core.models import DesiredRecord
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.defs.automation import HOUR, job_tags
from safetyamp_pipeline.defs.desired.assets import load_lookback_payroll
from safetyamp_pipeline.defs.safetyamp.sinks import (
    ALLOW_MASS_DEACTIVATION_TAG,
    RETRY_FAILED_TAG,
    store_failure,
    write_lease,
)
from safetyamp_pipeline.operator.provision import (
    CONFIG_KINDS,
    ProvisionBlocked,
    Provisioned,
    Provisioner,
    change_rows,
)
from safetyamp_pipeline.store import MissingAssetValue
from safetyamp_pipeline.store.errors import StoreError
from safetyamp_pipeline.sync.calendar import today_in_payroll_tz
from safetyamp_pipeline.sync.metadata import metadata_table
from safetyamp_pipeline.sync.report import SinkOptions

JOB_NAME = "safetyamp_provision_on_demand"
RECORD_COLUMNS = ("entity", "requested", "key", "action", "status", "fields", "error")
CHANGE_COLUMNS = ("entity", "key", "field", "before", "after")


class ProvisionOnDemandConfig(dg.Config):
    employees: list[str] = []
    jobs: list[str] = []
    vehicles: list[str] = []
    dry_run: bool = False


def _stored(sync_store: Any, key: str) -> list[dict]:
    try:
        return list(sync_store.load_asset_value(key))
    except MissingAssetValue:
        return []


def _vehicles(samsara: SamsaraResource, sync_store: Any, settings: SyncSettings) -> list[dict]:
    """The Samsara vehicle list now, each with the driver link the last sync resolved."""
    from safetyamp_pipeline.core.driver_link import driver_employee_number

    client = samsara.get_client()
    vehicles = client.list_vehicles()
    cache = {row["driver_id"]: row.get("employee_number") for row in _stored(sync_store, "samsara/driver_employee_numbers")}
    for vehicle in vehicles:
        driver_id = str((vehicle.get("staticAssignedDriver") or {}).get("id") or "")
        if driver_id and driver_id not in cache:
            cache[driver_id] = driver_employee_number(client.get_driver(driver_id), settings.driver_notes_pattern)
        vehicle["driverEmployeeNumber"] = cache.get(driver_id) if driver_id else None
    return vehicles


def _tag(context: dg.OpExecutionContext, name: str) -> bool:
    return context.run.tags.get(name, "").strip().lower() in ("true", "1", "yes")


@dg.op(name="provision_on_demand", out=dg.Out(dg.Nothing))
def provision_on_demand(
    context: dg.OpExecutionContext,
    config: ProvisionOnDemandConfig,
    safetyamp: SafetyAmpResource,
    vista: VistaResource,
    samsara: SamsaraResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> None:
    wanted = {"jobs": config.jobs, "employees": config.employees, "vehicles": config.vehicles}
    if not any(wanted.values()):
        raise dg.Failure(description="Name at least one record: employees, jobs or vehicles in the run config.")
    settings = sync_settings.settings()
    options = SinkOptions(
        run_id=context.run.run_id,
        dry_run=config.dry_run,
        retry_failed=_tag(context, RETRY_FAILED_TAG),
        allow_mass_deactivation=_tag(context, ALLOW_MASS_DEACTIVATION_TAG),
    )
    sync_store = store.get_store()
    client = safetyamp.get_client(dry_run=config.dry_run)
    provisioner = Provisioner(client, sync_store, settings, options, context.log)
    results: list[Provisioned] = []
    # The sinks' write lease: a provision never plans from a state a running sink is changing.
    with write_lease(sync_store, context.run.run_id, "provision_on_demand", context.log, dry_run=config.dry_run):
        for name, names in wanted.items():
            if not names:
                continue
            kind = CONFIG_KINDS[name]
            try:
                desired, sources = _desired(name, vista, samsara, store, settings, context.run.run_id)
                results += provisioner.provision(kind, names, desired, sources)
            except ProvisionBlocked as exc:
                raise dg.Failure(description=str(exc)) from None
            except (Unauthorized, Forbidden) as exc:
                raise dg.Failure(description=f"SafetyAmp refused the credentials (check SAFETYAMP_TOKEN and SAFETYAMP_FQDN): {exc}") from exc
            except ApiError as exc:
                raise dg.Failure(description=f"SafetyAmp {kind.entity}: {exc}") from exc
            except (SQLAlchemyError, StoreError) as exc:
                raise store_failure(kind.entity, exc) from None
    for result in results:
        context.log.info("%s %s: %s (%s)%s", result.entity, result.key or result.requested, result.action, result.status,
                         f": {result.row()['error']}" if result.error else "")
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    context.add_output_metadata(
        {
            "dry_run": dg.MetadataValue.bool(config.dry_run),
            "records": metadata_table([r.row() for r in results], RECORD_COLUMNS, limit=500),
            "changes": metadata_table(change_rows(results), CHANGE_COLUMNS, limit=1000, masked=False),
            "api_calls": dg.MetadataValue.int(int(getattr(getattr(client, "stats", None), "total_requests", 0) or 0)),
            **{f"status_{k}": dg.MetadataValue.int(v) for k, v in sorted(counts.items())},
        }
    )
    failed = [r for r in results if r.status in ("rejected", "transient", "not found")]
    if failed:
        context.log.warning("%d of %d requested records were not written; see the records table", len(failed), len(results))


def _desired(
    name: str, vista: VistaResource, samsara: SamsaraResource, store: SyncStoreResource, settings: SyncSettings, run_id: str
) -> tuple[list[DesiredRecord], dict[str, list[dict]]]:
    sync_store = store.get_store()
    if name == "jobs":
        client = vista.get_client()
        return core_desired.desired_sites(client.open_jobs(), client.departments(), settings).records, {}
    if name == "employees":
        employees = vista.get_client().employees(settings.term_window_days)
        desired = core_desired.desired_users(
            employees,
            load_lookback_payroll(store, settings.lookback_weeks, run_id),
            _stored(sync_store, "entra/users"),
            _stored(sync_store, "viewpoint/jobs"),
            _stored(sync_store, "viewpoint/departments"),
            settings,
            today_in_payroll_tz(),
        )
        return desired.records, {}
    vehicles = _vehicles(samsara, sync_store, settings)
    return core_desired.desired_assets(vehicles, settings).records, {"samsara/vehicles": vehicles}


@dg.job(
    name=JOB_NAME,
    tags=job_tags(2 * HOUR),
    description="Sync exactly the named employees, jobs and vehicles now (config employees/jobs/vehicles, "
    "dry_run), with the sinks' rules, guard, ledger and failure handling; one SafetyAmp GET per record.",
)
def safetyamp_provision_on_demand() -> None:
    provision_on_demand()
