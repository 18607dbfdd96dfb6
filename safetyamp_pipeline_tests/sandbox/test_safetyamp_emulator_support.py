"""A hand-written SafetyAmp fixture and a running-emulator helper for the emulator tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from safetyamp_pipeline.sandbox.safetyamp_emulator import SafetyAmpEmulator
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TOKEN = "sandbox-token-123"
TENANT = "acme.safetyamp.com"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Fqdn": TENANT, "Accept": "application/json"}

# Real, valid US numbers per phonenumbers (202 = Washington DC, 312 = Chicago).
PHONE_A = "+12025550143"
PHONE_B = "+13125550188"

FIXTURE: dict[str, Any] = {
    "site_clusters": [
        {"id": 655, "name": "I&I", "parent_cluster_id": None, "external_code": None, "osha_establishment": 0},
        {
            "id": 709,
            "name": "Central",
            "parent_cluster_id": 655,
            "external_code": "Central",
            "osha_establishment": 0,
        },
        {
            "id": 712,
            "name": "44 - Electrical",
            "parent_cluster_id": 709,
            "external_code": "44",
            "osha_establishment": 0,
        },
        {
            "id": 720,
            "name": "Gulf",
            "parent_cluster_id": 655,
            "external_code": "Gulf",
            "osha_establishment": 0,
        },
    ],
    "sites": [
        {
            "id": 5145,
            "cluster_id": 712,
            "name": "12345. - Refinery Expansion",
            "ext_id": "12345.",
            "city": "Baton Rouge",
            "state": "LA",
            "zip_code": "70801",
            "country": "US",
            "street": "1 River Rd",
            "timezone": "America/Chicago",
        },
        {
            "id": 5146,
            "cluster_id": 720,
            "name": "23456. - Dock Repair",
            "ext_id": "23456.",
            "city": "Houston",
            "state": "TX",
            "zip_code": "77001",
            "country": "US",
        },
    ],
    "user_titles": [{"id": 18054, "name": "Foreman"}, {"id": 18055, "name": "Project Engineer"}],
    "roles": [
        {
            "id": 1,
            "name": "Company Administrator",
            "account_default": 0,
            "guard_name": "api",
            "created_at": "2024-01-05T10:00:00.000000Z",
            "updated_at": "2024-01-05T10:00:00.000000Z",
        },
        {
            "id": 3,
            "name": "Field",
            "account_default": 1,
            "guard_name": "api",
            "created_at": "2024-01-05T10:00:00.000000Z",
            "updated_at": "2024-01-05T10:00:00.000000Z",
        },
    ],
    "users": [
        {
            "id": "Xy7Qa",
            "emp_id": "1001",
            "first_name": "Dana",
            "last_name": "Reyes",
            "email": "dana.reyes@example.com",
            "mobile_phone": PHONE_A,
            "work_phone": PHONE_A,
            "system_access": True,
            "home_site_id": 5145,
            "current_title": {"id": 18054, "name": "Foreman"},
            "roles": [{"id": 3, "name": "Field"}],
            "sites": [],
        },
        {
            "id": "Pq2Rs",
            "emp_id": "1002",
            "first_name": "Lee",
            "last_name": "Tran",
            "email": "lee.tran@example.com",
            "system_access": False,
            "home_site_id": 5146,
            "current_title_id": 18055,
            "role_ids": [3],
        },
    ],
    "asset_types": [
        {"id": 3183, "name": "Vehicle", "site_id": 5145, "asset_category_id": 1, "relationships": []}
    ],
    "assets": [
        {
            "id": 40,
            "name": "Truck 12",
            "serial": "1FTFW1E50NFA00001",
            "site_id": 5145,
            "asset_type_id": 3183,
            "status": 1,
            "current_user_id": "Xy7Qa",
        },
    ],
}


def write_fixture(directory: Path, document: Any = None, name: str = "safetyamp.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(FIXTURE if document is None else document), encoding="utf-8")
    return path


class Running:
    """An emulator served on a free port; ``get``/``post``/... send authenticated JSON requests."""

    def __init__(self, emulator: SafetyAmpEmulator) -> None:
        self.emulator = emulator
        self.server = ServerThread(emulator.app).start()
        self.url = self.server.url

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**HEADERS, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def stop(self) -> None:
        self.server.stop()


def start(
    directory: Path,
    *,
    fixture: Path | None = None,
    rate_limit: int | None = None,
    rate_window: float = 60.0,
    faults: FaultConfig | None = None,
    state_name: str = "state.json",
    save_interval: float = 0.2,
    max_page_size: int = 100,
) -> Running:
    emulator = SafetyAmpEmulator(
        directory / state_name,
        token=TOKEN,
        tenant=TENANT,
        fixture=fixture,
        rate_limit=rate_limit,
        max_page_size=max_page_size,
        rate_window=rate_window,
        faults=faults,
        save_interval=save_interval,
    )
    return Running(emulator)


def new_user(**overrides: Any) -> dict[str, Any]:
    body = {
        "first_name": "Sam",
        "last_name": "Okafor",
        "email": "sam.okafor@example.com",
        "home_site_id": 5145,
    }
    body.update(overrides)
    return body
