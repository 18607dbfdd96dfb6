"""Extract asset for Samsara vehicles, with each vehicle's driver resolved to an employee number."""


from datetime import UTC, datetime, timedelta

import dagster as dg

from safetyamp_pipeline.clients.resources import SamsaraResource, SyncSettingsResource, SyncStoreResource
from safetyamp_pipeline.core.driver_link import driver_employee_number
from safetyamp_pipeline.defs.sources.retry import SOURCE_RETRY
from safetyamp_pipeline.defs.sources.schema import inferred_schema, table_metadata
from safetyamp_pipeline.defs.sources.store_guard import guarded_store
from safetyamp_pipeline.defs.sources.viewpoint import SOURCE_FRESHNESS
from safetyamp_pipeline.store import MissingAssetValue
from safetyamp_pipeline.sync.metadata import source_metadata

DRIVER_CACHE_KEY = "samsara/driver_employee_numbers"
DRIVER_CACHE_MAX_AGE = timedelta(hours=24)
# The vehicle columns the sync uses (a vehicle also carries nested Samsara objects).
VEHICLE_COLUMNS = ("id", "name", "vin", "licensePlate", "serial", "vehicleRegulationMode", "driverEmployeeNumber")


def _load_driver_cache(store) -> dict[str, dict]:
    try:
        return {row["driver_id"]: row for row in store.load_asset_value(DRIVER_CACHE_KEY)}
    except MissingAssetValue:  # no driver looked up yet
        return {}


@dg.asset(
    key=["samsara", "vehicles"],
    group_name="samsara",
    kinds={"samsara"},
    description="Samsara vehicles with `driverEmployeeNumber` (from the driver's externalIds or notes). "
    "Driver look-ups are cached in the store for 24 h, so an unchanged fleet costs one list call.",
    freshness_policy=SOURCE_FRESHNESS,
    retry_policy=SOURCE_RETRY,
)
def samsara_vehicles(
    context: dg.AssetExecutionContext,
    samsara: SamsaraResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> dg.MaterializeResult:
    notes_pattern = sync_settings.settings().driver_notes_pattern
    client = samsara.get_client()
    vehicles = client.list_vehicles()
    with guarded_store("samsara/vehicles"):
        sync_store = store.get_store()
        cache = _load_driver_cache(sync_store)
    now = datetime.now(UTC)

    def fresh(driver_id: str) -> bool:
        cached = cache.get(driver_id)
        return cached is not None and now - datetime.fromisoformat(cached["fetched_at"]) < DRIVER_CACHE_MAX_AGE

    wanted = {str((v.get("staticAssignedDriver") or {}).get("id") or "") for v in vehicles}
    client.prefetch_drivers(sorted(d for d in wanted if d and not fresh(d)))
    lookups = 0
    for vehicle in vehicles:
        driver = vehicle.get("staticAssignedDriver") or {}
        driver_id = str(driver.get("id") or "")
        number = None
        if driver_id:
            if fresh(driver_id):
                number = cache[driver_id]["employee_number"]
            else:
                lookups += 1
                number = driver_employee_number(client.get_driver(driver_id), notes_pattern)
                cache[driver_id] = {"driver_id": driver_id, "employee_number": number, "fetched_at": now.isoformat()}
        vehicle["driverEmployeeNumber"] = number
    with guarded_store("samsara/vehicles"):
        if lookups:
            sync_store.save_asset_value(DRIVER_CACHE_KEY, list(cache.values()), run_id=context.run.run_id)
        sync_store.save_asset_value("samsara/vehicles", vehicles, run_id=context.run.run_id)
    linked = sum(1 for v in vehicles if v.get("driverEmployeeNumber"))
    context.log.info("Read %d vehicles (%d with a linked driver, %d driver look-ups)", len(vehicles), linked, lookups)
    preview = [{k: v.get(k) for k in VEHICLE_COLUMNS} for v in vehicles]
    return dg.MaterializeResult(
        metadata={
            **source_metadata(preview, linked_drivers=linked, driver_lookups=dg.MetadataValue.int(lookups)),
            **table_metadata(inferred_schema(preview, VEHICLE_COLUMNS), len(vehicles)),
        }
    )
