"""Sink assets: reconcile each SafetyAmp entity with its desired state (pool ``safetyamp_api``, and
the sync store's write lease while reading, planning and writing: `sync.write_lease`).

Parents are written before children: clusters, then sites (which need cluster ids), titles, users
(home site, title), assets (site, driver). Each sink's value is the entity's SafetyAmp records after
the writes, saved in the sync store, and downstream sinks resolve ids from it.

Run tags: ``dry_run=true`` plans and reports without writing; ``retry_failed=true`` re-sends records
held after a 422; ``allow_mass_deactivation=true`` lifts the deactivation guard;
``safetyamp/full_read=true`` (set by ``safetyamp_reconcile``) reads SafetyAmp in full first.
"""


from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from safetyamp_pipeline.clients.errors import ApiError, Forbidden, Unauthorized
from safetyamp_pipeline.clients.resources import SafetyAmpResource, SyncSettingsResource, SyncStoreResource
from safetyamp_pipeline.core.models import record_from_row
from safetyamp_pipeline.defs.safetyamp.freshness import sink_freshness_policy
from safetyamp_pipeline.store.errors import StoreError
from safetyamp_pipeline.sync.failure_queue import FAILURE_QUEUE_COLUMNS, failure_queue_rows
from safetyamp_pipeline.sync.masking import mask_text
from safetyamp_pipeline.sync.metadata import metadata_table
from safetyamp_pipeline.sync.progress import ProgressReporter
from safetyamp_pipeline.sync.reconcile import MassDeactivationBlocked, Reconciler, SinkOptions, SinkReport
from safetyamp_pipeline.sync.rejections import REJECTION_COLUMNS, rejection_rows, table_rows
from safetyamp_pipeline.sync.write_lease import holder_name, holding_write_lease

POOL = "safetyamp_api"
FULL_READ_TAG = "safetyamp/full_read"
DRY_RUN_TAG = "dry_run"
RETRY_FAILED_TAG = "retry_failed"
ALLOW_MASS_DEACTIVATION_TAG = "allow_mass_deactivation"
CHANGE_COLUMNS = ("action", "key", "fields", "status", "error")
FAILURE_COLUMNS = ("key", "action", "kind", "status", "error")
DUPLICATE_COLUMNS = ("key", "kept_id", "duplicate_ids")


def _tag(context: dg.AssetExecutionContext, name: str) -> bool:
    return context.run.tags.get(name, "").strip().lower() in ("true", "1", "yes")


def sink_options(context: dg.AssetExecutionContext, sync_settings: SyncSettingsResource) -> SinkOptions:
    return SinkOptions(
        run_id=context.run.run_id,
        dry_run=_tag(context, DRY_RUN_TAG),
        force_full_read=_tag(context, FULL_READ_TAG),
        retry_failed=_tag(context, RETRY_FAILED_TAG),
        allow_mass_deactivation=_tag(context, ALLOW_MASS_DEACTIVATION_TAG),
        mirror_max_age=timedelta(hours=sync_settings.mirror_max_age_hours),
    )


def _report_metadata(report: SinkReport, run_id: str, dry_run: bool, rejected: list[dict], queue: list[dict]) -> dict:
    metadata: dict = {name: dg.MetadataValue.int(value) for name, value in report.counts().items()}
    metadata["full_read"] = dg.MetadataValue.bool(report.full_read)
    metadata["dry_run"] = dg.MetadataValue.bool(dry_run)
    metadata["seconds"] = dg.MetadataValue.float(round(report.seconds, 3))
    metadata["rate_limit_wait_seconds"] = dg.MetadataValue.float(round(report.rate_limit_wait_seconds, 3))
    metadata["changes"] = metadata_table(report.changes, CHANGE_COLUMNS)
    metadata["failures"] = metadata_table(report.failures, FAILURE_COLUMNS)
    metadata["rejected"] = metadata_table(table_rows(rejected), REJECTION_COLUMNS)
    metadata["open_failures"] = dg.MetadataValue.int(len(queue))
    metadata["failure_queue"] = metadata_table(failure_queue_rows(queue), FAILURE_QUEUE_COLUMNS, limit=200)
    metadata["ledger"] = dg.MetadataValue.text(f"safetyamp-pipeline ledger --run {run_id}")
    return metadata


def _upstream_state(sync_store, ref_sinks: Sequence[str], ref_entities: Sequence[str]) -> tuple[dict, list[str]]:
    """The upstream sinks' values; one that was never materialized (a dry run writes none) is
    read from the mirror instead."""
    from safetyamp_pipeline.store import MissingAssetValue

    state: dict[str, list[dict]] = {}
    from_mirror = list(ref_entities)
    for ref in ref_sinks:
        try:
            state[ref] = sync_store.load_asset_value(f"safetyamp/{ref}")
        except MissingAssetValue:
            from_mirror.append(ref)
    return state, from_mirror


def store_failure(entity: str, exc: Exception) -> dg.Failure:
    """The sync store failed during a sink. The SQLAlchemy error is not chained: its text quotes
    the statement's parameters (ledger and mirror rows hold person data). Writes already sent are
    recorded as open intents; the next run re-reads SafetyAmp and completes the ledger."""
    original = exc if isinstance(exc, StoreError) else (getattr(exc, "orig", None) or exc)
    first_line = (str(original).strip().splitlines() or [""])[0]
    return dg.Failure(
        description=f"The sync store became unavailable during safetyamp/{entity} "
        f"({type(original).__name__}: {mask_text(first_line)[:300]}). Writes already sent are kept as open "
        "intents; the next run re-reads SafetyAmp and completes the ledger."
    )


@contextmanager
def write_lease(sync_store, run_id: str, name: str, log, *, dry_run: bool) -> Iterator[float]:
    """Hold the sync store's SafetyAmp write lease (`sync.write_lease`) for the block; a dry run
    writes nothing and takes none. A store error while taking it fails like any store error."""
    if dry_run:
        yield 0.0
        return
    with ExitStack() as held:
        try:
            waited = held.enter_context(holding_write_lease(sync_store, holder_name(run_id, name), log))
        except (SQLAlchemyError, StoreError) as exc:
            raise store_failure(name, exc) from None
        yield waited


def _save_sink_value(sync_store, entity: str, report: SinkReport, read_in_full: bool, dry_run: bool, run_id: str) -> int:
    """Save the entity's SafetyAmp records as the sink's value; returns their count. When nothing
    was written or read the stored value is still exact, so an unchanged hour skips the rewrite."""
    info = sync_store.asset_value_info(f"safetyamp/{entity}")
    unchanged = not (report.created or report.updated or report.deactivated or report.healed or read_in_full)
    if info is not None and (dry_run or unchanged):
        return int(info["row_count"])
    records = list(sync_store.mirror_records(entity).values())
    if not dry_run:
        sync_store.save_asset_value(f"safetyamp/{entity}", records, run_id=run_id)
    return len(records)


def run_sink(
    context: dg.AssetExecutionContext,
    entity: str,
    desired_entity: str,
    ref_sinks: Sequence[str],
    ref_entities: Sequence[str],
    safetyamp: SafetyAmpResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> dg.MaterializeResult:
    options = sink_options(context, sync_settings)
    sync_store = store.get_store()
    # This run's own desired value (else the last accepted): a concurrent desired/* cannot swap it mid-run.
    desired = [
        record_from_row(row)
        for row in sync_store.load_asset_value(f"desired/{desired_entity}", run_id=context.run.run_id)
    ]
    ref_state, ref_entities = _upstream_state(sync_store, ref_sinks, ref_entities)
    client = safetyamp.get_client(dry_run=options.dry_run)
    progress = ProgressReporter(
        f"safetyamp/{entity}", context.log, limit_per_second=safetyamp.requests_per_window / max(safetyamp.window_seconds, 1e-9)
    )
    with write_lease(sync_store, context.run.run_id, entity, context.log, dry_run=options.dry_run) as waited:
        if waited >= 1.0:
            context.log.info("safetyamp/%s: took the SafetyAmp write lease after waiting %.1f s", entity, waited)
        reconciler = Reconciler(client, sync_store, sync_settings.settings(), options, log=context.log, progress=progress)
        try:
            report = reconciler.reconcile(entity, desired, ref_entities, ref_state)
        except MassDeactivationBlocked as exc:
            raise dg.Failure(
                description=str(exc),
                metadata={"planned_deactivate": exc.planned, "active": exc.active, "reason": exc.reason},
            ) from exc
        except (Unauthorized, Forbidden) as exc:
            raise dg.Failure(
                description=f"SafetyAmp refused the credentials (check the secret SAFETYAMP_TOKEN and "
                f"SAFETYAMP_FQDN): {exc}"
            ) from exc
        except ApiError as exc:
            raise dg.Failure(description=f"SafetyAmp {entity}: {exc}") from exc
        except (SQLAlchemyError, StoreError) as exc:
            raise store_failure(entity, exc) from None

        rejected = rejection_rows(report, desired)
        try:
            row_count = _save_sink_value(
                sync_store, entity, report, reconciler.was_read_in_full(entity), options.dry_run, context.run.run_id
            )
            if not options.dry_run:
                sync_store.rejections_replace(entity, context.run.run_id, rejected)
            queue = sync_store.failures_open(entity)
        except (SQLAlchemyError, StoreError) as exc:
            raise store_failure(entity, exc) from None
    context.log.info(
        "safetyamp/%s: created %d, updated %d, deactivated %d, unchanged %d, rejected %d, failed %d, %d API calls",
        entity, report.created, report.updated, report.deactivated, report.unchanged,
        report.rejected_before_send, report.failed, report.api_calls,
    )
    return dg.MaterializeResult(
        metadata={
            **_report_metadata(report, context.run.run_id, options.dry_run, rejected, queue),
            "dagster/row_count": row_count,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="writes_succeeded",
                passed=report.failed == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"failed": report.failed, "failures": metadata_table(report.failures, FAILURE_COLUMNS)},
                description="Every planned write was accepted by SafetyAmp.",
            ),
            dg.AssetCheckResult(
                check_name="no_drift",
                passed=report.drift == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"drift": report.drift, "full_read": report.full_read},
                description="A full read found SafetyAmp as we last left it.",
            ),
            dg.AssetCheckResult(
                check_name="no_duplicate_keys",
                passed=not report.duplicates,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "duplicates": len(report.duplicates),
                    "records": metadata_table(report.duplicates, DUPLICATE_COLUMNS),
                },
                description="No natural key (emp_id, job number, serial, title) is held by several SafetyAmp "
                "records; the lowest id is synced, the others are listed.",
            ),
        ],
    )


def _checks(entity: str) -> list[dg.AssetCheckSpec]:
    key = ["safetyamp", entity]
    return [
        dg.AssetCheckSpec("writes_succeeded", asset=key),
        dg.AssetCheckSpec("no_drift", asset=key),
        dg.AssetCheckSpec("no_duplicate_keys", asset=key),
    ]


def _sink_spec(entity: str, deps: list[list[str]], description: str) -> dict:
    return {
        "key": ["safetyamp", entity],
        "group_name": "safetyamp",
        "kinds": {"api"},
        "pool": POOL,
        "deps": deps,
        "description": description,
        "check_specs": _checks(entity),
        "freshness_policy": sink_freshness_policy(entity),
    }


@dg.asset(**_sink_spec("site_clusters", [["desired", "site_clusters"]], "SafetyAmp site clusters (root, regions, departments)."))
def safetyamp_site_clusters(
    context: dg.AssetExecutionContext, safetyamp: SafetyAmpResource, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    return run_sink(context, "site_clusters", "site_clusters", [], [], safetyamp, store, sync_settings)


@dg.asset(
    **_sink_spec("sites", [["desired", "sites"], ["safetyamp", "site_clusters"]], "SafetyAmp sites, one per open job.")
)
def safetyamp_sites(
    context: dg.AssetExecutionContext, safetyamp: SafetyAmpResource, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    return run_sink(context, "sites", "sites", ["site_clusters"], [], safetyamp, store, sync_settings)


@dg.asset(**_sink_spec("user_titles", [["desired", "titles"]], "SafetyAmp user titles (never duplicated)."))
def safetyamp_user_titles(
    context: dg.AssetExecutionContext, safetyamp: SafetyAmpResource, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    return run_sink(context, "user_titles", "titles", [], [], safetyamp, store, sync_settings)


@dg.asset(
    **_sink_spec(
        "users",
        [["desired", "users"], ["safetyamp", "sites"], ["safetyamp", "site_clusters"], ["safetyamp", "user_titles"]],
        "SafetyAmp users: created, updated field by field, deactivated when terminated (guarded).",
    )
)
def safetyamp_users(
    context: dg.AssetExecutionContext, safetyamp: SafetyAmpResource, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    return run_sink(
        context, "users", "users", ["sites", "site_clusters", "user_titles"], ["roles"], safetyamp, store, sync_settings
    )


@dg.asset(
    **_sink_spec(
        "assets",
        [["desired", "assets"], ["safetyamp", "users"], ["safetyamp", "sites"]],
        "SafetyAmp assets for Samsara vehicles (matched by serial; retired when gone from Samsara).",
    )
)
def safetyamp_assets(
    context: dg.AssetExecutionContext, safetyamp: SafetyAmpResource, store: SyncStoreResource, sync_settings: SyncSettingsResource
) -> dg.MaterializeResult:
    return run_sink(context, "assets", "assets", ["users", "sites"], ["asset_types"], safetyamp, store, sync_settings)
