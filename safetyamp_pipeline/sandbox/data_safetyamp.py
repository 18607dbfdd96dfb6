"""The initial SafetyAmp tenant: empty but for what an administrator sets up by hand.

Records have the shape the API's GET returns (external-apis §1.4); ids are ints except user
hashids. Region and department clusters, sites, titles, users and assets are left to the sync.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from safetyamp_pipeline.sandbox.data_pools import REGIONS

ROOT_CLUSTER_ID = 655
ROOT_CLUSTER_NAME = "I&I"
YARD_SITE_ID = 5145
REGION_CLUSTER_BASE_ID = 656
REGION_OFFICE_BASE_ID = 5146
YARD_SITE_NAME = "Yard"
VEHICLE_ASSET_TYPE_ID = 3183
VEHICLE_ASSET_TYPE_NAME = "Vehicles"
VEHICLE_ASSET_CATEGORY_ID = 41
ADMIN_HASHID = "Xk3pQ"  # the tenant administrator who set these records up
ROLES = (
    (181, "Company Administrator", 0),
    (182, "Supervisor", 0),
    (183, "Field", 1),
    (184, "Safety Representative", 0),
)


def sql_datetime(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def laravel_iso(moment: datetime) -> str:
    """Laravel's default JSON date: ISO 8601 with microseconds and Z (27 characters)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_safetyamp(as_of: date) -> dict[str, list[dict]]:
    setup = datetime.combine(as_of - timedelta(days=900), time(14, 3, 22))
    created, updated = sql_datetime(setup), sql_datetime(setup + timedelta(days=3, hours=2))
    roles = [
        {
            "id": role_id,
            "account_default": default,
            "name": name,
            "default_role_id": None,
            "scim_external_id": None,
            "guard_name": "api",
            "created_by": ADMIN_HASHID,
            "updated_by": ADMIN_HASHID,
            "created_at": laravel_iso(setup),
            "updated_at": laravel_iso(setup),
            "deleted_at": None,
            "deleted_by": None,
        }
        for role_id, name, default in ROLES
    ]
    root = {
        "id": ROOT_CLUSTER_ID,
        "name": ROOT_CLUSTER_NAME,
        "parent_cluster_id": None,
        "path": "/",
        "external_code": None,
        "osha_establishment": 0,
        "created_at": created,
        "updated_at": created,
        "created_by": ADMIN_HASHID,
        "updated_by": ADMIN_HASHID,
        "deleted_at": None,
        "deleted_by": None,
        "depth": 0,
    }
    yard = {
        "id": YARD_SITE_ID,
        "cluster_id": ROOT_CLUSTER_ID,
        "name": YARD_SITE_NAME,
        "street": "12145 Airline Hwy",
        "street2": None,
        "city": "Gonzales",
        "state": "LA",
        "zip_code": "70737",
        "country": "US",
        "timezone": "America/Chicago",
        "latitude": "30.2385",
        "longitude": "-90.9201",
        "naics_code": None,
        "industry_description": None,
        "ext_id": None,
        "em_enabled": False,
        "em_weather_override": None,
        "created_by": ADMIN_HASHID,
        "created_at": created,
        "updated_at": updated,
        "updated_by": ADMIN_HASHID,
        "deleted_at": None,
        "deleted_by": None,
    }
    vehicles_type = {
        "id": VEHICLE_ASSET_TYPE_ID,
        "name": VEHICLE_ASSET_TYPE_NAME,
        "site_id": YARD_SITE_ID,
        "asset_category_id": VEHICLE_ASSET_CATEGORY_ID,
        "relationships": [],
    }
    # The tenant's manual set-up also has one cluster per region with a regional office site
    # attached directly to it: the home site of employees without a recent job (legacy §6.4.2).
    regions, offices = [], []
    for n, region in enumerate(REGIONS):
        cluster_id = REGION_CLUSTER_BASE_ID + n
        regions.append({**root, "id": cluster_id, "name": region, "parent_cluster_id": ROOT_CLUSTER_ID,
                        "path": f"/{ROOT_CLUSTER_ID}/", "external_code": region, "depth": 1})
        offices.append({**yard, "id": REGION_OFFICE_BASE_ID + n, "cluster_id": cluster_id,
                        "name": f"{region} Regional Office", "street": None, "city": None, "zip_code": None,
                        "latitude": None, "longitude": None})
    return {
        "users": [],
        "sites": [yard, *offices],
        "site_clusters": [root, *regions],
        "user_titles": [],
        "roles": roles,
        "asset_types": [vehicles_type],
        "assets": [],
    }
