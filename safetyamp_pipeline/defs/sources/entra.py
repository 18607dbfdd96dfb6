"""Extract asset for Microsoft Entra ID users (work e-mails keyed by employee id)."""


import dagster as dg

from safetyamp_pipeline.clients.resources import GraphResource, SyncSettingsResource, SyncStoreResource
from safetyamp_pipeline.defs.sources.retry import SOURCE_RETRY
from safetyamp_pipeline.defs.sources.schema import inferred_schema, table_metadata
from safetyamp_pipeline.defs.sources.store_guard import guarded_store
from safetyamp_pipeline.defs.sources.viewpoint import ALLOW_EMPLOYEE_DROP_TAG, SOURCE_FRESHNESS
from safetyamp_pipeline.sync.count_guard import check_count
from safetyamp_pipeline.sync.metadata import source_metadata

ENTRA_FIELDS = ("id", "employeeId", "mail", "userPrincipalName", "accountEnabled")
EMAIL_BASELINE_KEY = "checks/entra_users_with_email_baseline"


def _with_email(users: list[dict]) -> int:
    """Users with an employee id and a `mail`. The UPN does not count: every account has one, so
    a read that lost `mail` must show as a drop here."""
    return sum(1 for u in users if str(u.get("employeeId") or "").strip() and str(u.get("mail") or "").strip())


@dg.asset(
    key=["entra", "users"],
    group_name="entra",
    kinds={"azure"},
    description="Entra ID users (id, employeeId, mail, userPrincipalName, accountEnabled). An outage "
    "fails this asset, so no user is planned from partial e-mail data.",
    freshness_policy=SOURCE_FRESHNESS,
    retry_policy=SOURCE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "email_count_stable",
            asset=["entra", "users"],
            blocking=True,
            description="Blocks the sync when the Entra users carrying an employee id and an e-mail fell "
            "by more than the configured share since the last accepted read (an empty or partial "
            "directory answer must never erase or replace e-mails in SafetyAmp).",
        )
    ],
)
def entra_users(
    context: dg.AssetExecutionContext,
    graph: GraphResource,
    store: SyncStoreResource,
    sync_settings: SyncSettingsResource,
) -> dg.MaterializeResult:
    users = [{field: u.get(field) for field in ENTRA_FIELDS} for u in graph.get_client().list_users()]
    run_id = context.run.run_id
    enabled = sum(1 for u in users if u.get("accountEnabled"))
    context.log.info("Read %d Entra users (%d enabled)", len(users), enabled)

    with_email = _with_email(users)
    allowed_drop = sync_settings.employee_drop_share
    # Saved as pending first: only a read the guard accepts becomes a value desired/* can load.
    with guarded_store("entra/users"):
        sync_store = store.get_store()
        sync_store.save_asset_value("entra/users", users, run_id=run_id, accept=False)
        guard = check_count(
            sync_store, EMAIL_BASELINE_KEY, "with_email", with_email, allowed_drop=allowed_drop,
            overridden=context.run.tags.get(ALLOW_EMPLOYEE_DROP_TAG, "").lower() == "true", run_id=run_id,
        )
        if guard.stable:
            sync_store.accept_asset_value("entra/users", run_id)
    baseline, overridden, stable = guard.baseline, guard.overridden, guard.stable
    if not stable:
        context.log.error(
            "Entra users with an employee id and an e-mail fell from %s to %d (more than %.0f%%): the user "
            "sync stops before any write. Fix the directory read, or re-run with tag %s=true if the drop is real.",
            baseline, with_email, allowed_drop * 100, ALLOW_EMPLOYEE_DROP_TAG,
        )
    return dg.MaterializeResult(
        metadata={
            **source_metadata(users, enabled=dg.MetadataValue.int(enabled)),
            **table_metadata(inferred_schema(users, ENTRA_FIELDS), len(users)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="email_count_stable",
                passed=stable,
                metadata={"with_email": with_email, "baseline": baseline if baseline is not None else -1,
                          "allowed_drop_share": allowed_drop, "overridden": overridden},
                description=(
                    f"{with_email} Entra users with an employee id and an e-mail; last accepted read had {baseline}."
                    if baseline is not None
                    else f"{with_email} Entra users with an employee id and an e-mail; first read, accepted as the baseline."
                ),
            )
        ],
    )
