"""Every literal the legacy service hard-coded (legacy-service.md §11.4), as configuration.

Defaults are the legacy values so that a run without configuration behaves like the old service
(minus its bugs). Each field is set by the environment variable ``SAFETYAMP_<FIELD>`` (e.g.
``SAFETYAMP_VEHICLE_SITE_NAME``; a few keep older names) — read by ``sync/settings_env.py``, since
``core/`` does no I/O. docs/operations.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncSettings:
    # Vista scope
    pr_company: int = 1
    jc_company: int = 1
    open_job_status: int = 1
    lookback_weeks: int = 12
    term_window_days: int | None = None

    # Cluster tree
    root_cluster_name: str = "I&I"
    osha_establishment: int = 0

    # Defaults sent on create
    default_role_name: str = "Field"
    timezone: str = "America/Chicago"
    country: str = "US"
    default_state: str = "LA"
    placeholder_street: str = "Unknown"
    placeholder_city: str = "Unknown"
    placeholder_zip: str = "00000"
    new_user_text_opt_out: int = 1
    phone_default_region: str = "US"

    # Entra
    entra_excluded_mail_fragment: str = "onmicrosoft"

    # Samsara -> assets
    vehicle_asset_type_name: str = "Vehicles"
    vehicle_site_name: str = "Yard"
    vehicle_active_status: int = 1
    vehicle_retired_status: int = 0
    driver_notes_pattern: str = r"\d{4,}"

    # Safety guards (used by the sinks / checks)
    mass_deactivation_min: int = 5
    mass_deactivation_share: float = 0.10
    active_employee_drop_share: float = 0.20
