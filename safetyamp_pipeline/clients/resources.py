"""Dagster resources: thin wrappers that build the plain clients.

Non-secret settings (URLs, company numbers, limits) are resource fields, so the Dagster UI shows
them. Secrets never are: each resource resolves its secret in ``setup_for_execution`` through
:class:`SecretSource` (environment variables, or Azure Key Vault when ``AZURE_KEY_VAULT_URL`` is set),
and keeps it in a private attribute.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from safetyamp_pipeline.core.settings import SyncSettings


def _secrets() -> Any:
    from safetyamp_pipeline.clients.secrets import SecretSource

    return SecretSource(env=os.environ, key_vault_url=os.environ.get("AZURE_KEY_VAULT_URL") or None)


class SafetyAmpResource(dg.ConfigurableResource):
    """The SafetyAmp REST API (rate-limited, retrying, typed errors)."""

    api_url: str
    fqdn: str
    requests_per_window: int = 60
    window_seconds: float = 60.0
    max_total_wait_seconds: float = 300.0

    _client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = None

    def get_client(self, *, dry_run: bool = False) -> Any:
        from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient

        if self._client is None or self._client.dry_run != dry_run:
            from safetyamp_pipeline.store.rate_budget import shared_budget_from_env

            token = _secrets().get("SAFETYAMP_TOKEN")
            self._client = SafetyAmpClient(
                self.api_url,
                token,
                self.fqdn,
                requests_per_window=self.requests_per_window,
                window_seconds=self.window_seconds,
                max_total_wait=self.max_total_wait_seconds,
                dry_run=dry_run,
                # One budget per token for every run and pod, kept in the sync store.
                limiter=shared_budget_from_env(token, self.requests_per_window, self.window_seconds),
            )
        return self._client


class SamsaraResource(dg.ConfigurableResource):
    """The Samsara fleet API (vehicles and drivers)."""

    api_url: str = "https://api.samsara.com"
    requests_per_second: float = 25.0

    _client: Any = PrivateAttr(default=None)

    def get_client(self) -> Any:
        from safetyamp_pipeline.clients.samsara import SamsaraClient

        if self._client is None:
            self._client = SamsaraClient(
                self.api_url,
                _secrets().get("SAMSARA_API_TOKEN"),
                requests_per_second=self.requests_per_second,
            )
        return self._client


class GraphResource(dg.ConfigurableResource):
    """Microsoft Graph (Entra ID users) through MSAL client credentials."""

    tenant_id: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    ca_bundle: str | None = None

    _client: Any = PrivateAttr(default=None)

    def get_client(self) -> Any:
        from safetyamp_pipeline.clients.graph import GraphClient

        if self._client is None:
            secrets = _secrets()
            # The app's ids are not secret, but the old service kept them in Key Vault too.
            self._client = GraphClient(
                self.tenant_id or secrets.get("MS_GRAPH_TENANT_ID"),
                self.client_id or secrets.get("MS_GRAPH_CLIENT_ID"),
                secrets.get("MS_GRAPH_CLIENT_SECRET"),
                authority_host=self.authority_host,
                graph_url=self.graph_url,
                ca_bundle=self.ca_bundle,
            )
        return self._client


class VistaResource(dg.ConfigurableResource):
    """Read-only access to the Viewpoint Vista database."""

    pr_company: int = 1
    jc_company: int = 1

    _client: Any = PrivateAttr(default=None)

    def get_client(self) -> Any:
        from safetyamp_pipeline.clients.vista import VistaClient
        from safetyamp_pipeline.clients.vista_connect import create_vista_engine

        if self._client is None:
            # SQL_SERVER, SQL_DATABASE, SQL_USERNAME and SQL_PASSWORD: environment, or Key Vault.
            engine = create_vista_engine(os.environ, secrets=_secrets())
            self._client = VistaClient(engine, pr_company=self.pr_company, jc_company=self.jc_company)
        return self._client


class SyncStoreResource(dg.ConfigurableResource):
    """The sync store: asset values, SafetyAmp mirror, ledger and failures (SQL)."""

    url: str | None = None
    db_schema: str | None = None

    _store: Any = PrivateAttr(default=None)

    def get_store(self) -> Any:
        from safetyamp_pipeline.store import SyncStore, default_store_url

        if self._store is None:
            self._store = SyncStore(self.url or default_store_url(os.environ), schema=self.db_schema)
        return self._store


class SyncSettingsResource(dg.ConfigurableResource):
    """Business settings (every literal the legacy service hard-coded), with the legacy defaults."""

    pr_company: int = SyncSettings.pr_company
    jc_company: int = SyncSettings.jc_company
    lookback_weeks: int = SyncSettings.lookback_weeks
    terminated_window_days: int | None = SyncSettings.term_window_days
    root_cluster_name: str = SyncSettings.root_cluster_name
    default_role_name: str = SyncSettings.default_role_name
    timezone: str = SyncSettings.timezone
    country: str = SyncSettings.country
    default_state: str = SyncSettings.default_state
    vehicle_asset_type_name: str = SyncSettings.vehicle_asset_type_name
    vehicle_site_name: str = SyncSettings.vehicle_site_name
    mass_deactivation_min: int = SyncSettings.mass_deactivation_min
    mass_deactivation_share: float = SyncSettings.mass_deactivation_share
    employee_drop_share: float = SyncSettings.active_employee_drop_share
    mirror_max_age_hours: float = 24.0

    def settings(self) -> SyncSettings:
        """The resource's fields win; every other business literal comes from its
        ``SAFETYAMP_<FIELD>`` variable (sync/settings_env.py), else its default."""
        from safetyamp_pipeline.sync.settings_env import sync_settings_from_env

        return sync_settings_from_env(
            pr_company=self.pr_company,
            jc_company=self.jc_company,
            lookback_weeks=self.lookback_weeks,
            term_window_days=self.terminated_window_days,
            root_cluster_name=self.root_cluster_name,
            default_role_name=self.default_role_name,
            timezone=self.timezone,
            country=self.country,
            default_state=self.default_state,
            vehicle_asset_type_name=self.vehicle_asset_type_name,
            vehicle_site_name=self.vehicle_site_name,
            mass_deactivation_min=self.mass_deactivation_min,
            mass_deactivation_share=self.mass_deactivation_share,
            active_employee_drop_share=self.employee_drop_share,
        )
