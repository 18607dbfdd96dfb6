"""Every resource key, bound exactly once, from the environment (DESIGN §6).

``SAFETYAMP_ENV=sandbox`` (the default) and ``production`` use the same resources: the sandbox
simply points the URLs at the local emulators (``safetyamp-sandbox up`` writes them to
``sandbox.env``). Secrets are not read here; each resource resolves its own at run time.
"""


import os
from collections.abc import Mapping

import dagster as dg

from safetyamp_pipeline.clients.resources import (
    GraphResource,
    SafetyAmpResource,
    SamsaraResource,
    SyncSettingsResource,
    SyncStoreResource,
    VistaResource,
)
from safetyamp_pipeline.logs import configure_logging
from safetyamp_pipeline.sync.settings_env import sync_settings_from_env


def automation_running(env: Mapping[str, str]) -> bool:
    """Default status of the schedules and sensors: RUNNING in production, STOPPED in the sandbox;
    ``SAFETYAMP_AUTOMATION_DEFAULT=stopped|running`` overrides it (e.g. a first production
    deployment that must not sync before its dry run has been reviewed)."""
    override = env.get("SAFETYAMP_AUTOMATION_DEFAULT", "").strip().lower()
    if override in ("running", "stopped"):
        return override == "running"
    return env.get("SAFETYAMP_ENV", "sandbox").strip().lower() == "production"


AUTOMATION_RUNNING = automation_running(os.environ)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from exc


def build_resources(env: Mapping[str, str]) -> dict[str, dg.ConfigurableResource]:
    ca_bundle = env.get("SAFETYAMP_CA_BUNDLE") or None
    settings = sync_settings_from_env(env)
    return {
        "safetyamp": SafetyAmpResource(
            api_url=env.get("SAFETYAMP_API_URL", "https://api.safetyamp.com"),
            fqdn=env.get("SAFETYAMP_FQDN", ""),
            requests_per_window=_int(env, "SAFETYAMP_RATE_LIMIT", 60),
            window_seconds=_float(env, "SAFETYAMP_RATE_WINDOW_SECONDS", 60.0),
        ),
        "samsara": SamsaraResource(api_url=env.get("SAMSARA_API_URL", "https://api.samsara.com")),
        "graph": GraphResource(
            tenant_id=env.get("MS_GRAPH_TENANT_ID", ""),
            client_id=env.get("MS_GRAPH_CLIENT_ID", ""),
            authority_host=env.get("MS_GRAPH_AUTHORITY_HOST", "https://login.microsoftonline.com"),
            graph_url=env.get("MS_GRAPH_API_URL", "https://graph.microsoft.com"),
            ca_bundle=ca_bundle,
        ),
        "vista": VistaResource(
            pr_company=_int(env, "VIEWPOINT_PR_COMPANY", 1),
            jc_company=_int(env, "VIEWPOINT_JC_COMPANY", 1),
        ),
        "store": SyncStoreResource(
            url=env.get("SAFETYAMP_STORE_URL") or None,
            db_schema=env.get("SAFETYAMP_STORE_SCHEMA") or None,
        ),
        "sync_settings": SyncSettingsResource(
            pr_company=settings.pr_company,
            jc_company=settings.jc_company,
            lookback_weeks=settings.lookback_weeks,
            terminated_window_days=settings.term_window_days,
            root_cluster_name=settings.root_cluster_name,
            default_role_name=settings.default_role_name,
            timezone=settings.timezone,
            country=settings.country,
            default_state=settings.default_state,
            vehicle_asset_type_name=settings.vehicle_asset_type_name,
            vehicle_site_name=settings.vehicle_site_name,
            mass_deactivation_min=settings.mass_deactivation_min,
            mass_deactivation_share=settings.mass_deactivation_share,
            employee_drop_share=settings.active_employee_drop_share,
            mirror_max_age_hours=_float(env, "SAFETYAMP_MIRROR_MAX_AGE_HOURS", 24.0),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    # Loading the code location (code server, every run pod) applies SAFETYAMP_LOG_FORMAT.
    configure_logging(os.environ)
    return dg.Definitions(resources=build_resources(os.environ))
