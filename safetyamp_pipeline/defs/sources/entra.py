"""Extract asset for Microsoft Entra ID users (work e-mails keyed by employee id)."""


import dagster as dg

from safetyamp_pipeline.clients.resources import GraphResource, SyncStoreResource
from safetyamp_pipeline.defs.sources.viewpoint import SOURCE_FRESHNESS
from safetyamp_pipeline.sync.metadata import source_metadata

ENTRA_FIELDS = ("id", "employeeId", "mail", "userPrincipalName", "accountEnabled")


@dg.asset(
    key=["entra", "users"],
    group_name="entra",
    kinds={"azure"},
    description="Entra ID users (id, employeeId, mail, userPrincipalName, accountEnabled). An outage "
    "fails this asset, so no user is planned from partial e-mail data.",
    freshness_policy=SOURCE_FRESHNESS,
)
def entra_users(
    context: dg.AssetExecutionContext, graph: GraphResource, store: SyncStoreResource
) -> dg.MaterializeResult:
    users = [{field: u.get(field) for field in ENTRA_FIELDS} for u in graph.get_client().list_users()]
    store.get_store().save_asset_value("entra/users", users, run_id=context.run.run_id)
    enabled = sum(1 for u in users if u.get("accountEnabled"))
    context.log.info("Read %d Entra users (%d enabled)", len(users), enabled)
    return dg.MaterializeResult(metadata=source_metadata(users, enabled=dg.MetadataValue.int(enabled)))
