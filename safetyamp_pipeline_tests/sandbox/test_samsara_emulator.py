"""The Samsara emulator over real HTTP: paging, drivers, auth, rate limit, faults, admin state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from safetyamp_pipeline.clients.samsara import SamsaraClient
from safetyamp_pipeline.sandbox.samsara_emulator import SamsaraEmulator, SamsaraFixtureError
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TOKEN = "sandbox-samsara-token"


def vehicle(n: int, **extra: object) -> dict:
    record = {
        "id": f"28147497671{n:04d}",
        "name": f"Truck {n}",
        "serial": f"G{n:05d}",
        "vin": f"1FTFW1E5{n:09d}",
        "year": "2021",
        "make": "Ford",
        "model": "F-150",
        "createdAtTime": "2024-01-02T03:04:05Z",
    }
    record.update(extra)
    return record


DRIVERS = [
    {"id": "5001", "name": "Pat Driver", "notes": "emp 12345", "externalIds": {"payrollId": "12345"}},
    {"id": "5002", "name": "Sam Gone", "driverActivationStatus": "deactivated"},
]


class Running:
    def __init__(self, emulator: SamsaraEmulator) -> None:
        self.emulator = emulator
        self.server = ServerThread(emulator.app).start()
        self.url = self.server.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def get(self, path: str, **params: object) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=10)

    def stop(self) -> None:
        self.session.close()
        self.server.stop()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    running: list[Running] = []

    def _start(vehicles: list[dict] | None = None, **kwargs: object) -> Running:
        fixture = {"vehicles": vehicles if vehicles is not None else [], "drivers": DRIVERS}
        kwargs.setdefault("rate_per_second", None)
        emulator = SamsaraEmulator(tmp_path / f"samsara{len(running)}.json", TOKEN, fixture=fixture, **kwargs)
        running.append(Running(emulator))
        return running[-1]

    yield _start
    for item in running:
        item.stop()


def collect(run: Running, limit: int) -> tuple[list[str], list[dict]]:
    """Follow hasNextPage like a correct client; return the ids and every page's pagination."""
    ids: list[str] = []
    pages: list[dict] = []
    params: dict[str, object] = {"limit": limit}
    for _ in range(50):
        body = run.get("/fleet/vehicles", **params).json()
        ids.extend(v["id"] for v in body["data"])
        pages.append({"count": len(body["data"]), **body["pagination"]})
        if not body["pagination"]["hasNextPage"]:
            return ids, pages
        params["after"] = body["pagination"]["endCursor"]
    raise AssertionError("paging never ended")


def test_paging_walks_every_vehicle_once_and_ends_with_empty_cursor(start) -> None:
    vehicles = [vehicle(n) for n in range(7)]
    run = start(vehicles)
    ids, pages = collect(run, limit=3)
    assert ids == [v["id"] for v in vehicles]
    assert [p["count"] for p in pages] == [3, 3, 1]
    assert [p["hasNextPage"] for p in pages] == [True, True, False]
    assert pages[-1]["endCursor"] == ""
    assert all(p["endCursor"] for p in pages[:-1])
    first = run.get("/fleet/vehicles", limit=3).json()["data"][0]
    assert first == vehicles[0]


def test_default_page_is_512_and_larger_limits_are_clamped(start) -> None:
    run = start([vehicle(n) for n in range(600)])
    default = run.get("/fleet/vehicles").json()
    assert len(default["data"]) == 512 and default["pagination"]["hasNextPage"] is True
    clamped = run.get("/fleet/vehicles", limit=5000).json()
    assert len(clamped["data"]) == 512
    rest = run.get("/fleet/vehicles", limit=5000, after=clamped["pagination"]["endCursor"]).json()
    assert len(rest["data"]) == 88 and rest["pagination"] == {"endCursor": "", "hasNextPage": False}


def test_bad_limit_and_unknown_cursor_are_400_with_samsara_error_body(start) -> None:
    run = start([vehicle(1)])
    for params in ({"limit": "lots"}, {"limit": 0}, {"after": "not-a-cursor"}):
        response = run.get("/fleet/vehicles", **params)
        assert response.status_code == 400, params
        assert set(response.json()) == {"message", "requestId"}


def test_injected_empty_page_keeps_has_next_page_so_looping_clients_get_everything(start) -> None:
    vehicles = [vehicle(n) for n in range(7)]
    run = start(vehicles, inject_empty_pages=True)
    ids, pages = collect(run, limit=3)
    assert ids == [v["id"] for v in vehicles]
    assert [p["count"] for p in pages] == [3, 0, 3, 0, 1]
    assert pages[1]["hasNextPage"] is True
    cursors = [p["endCursor"] for p in pages[:-1]]
    assert len(set(cursors)) == len(cursors), "every cursor must be new, or clients rightly suspect a loop"


def test_empty_page_setting_switchable_at_run_time_and_honoured_by_the_product_client(start) -> None:
    vehicles = [vehicle(n) for n in range(5)]
    run = start(vehicles)
    answer = requests.post(run.url + "/__sandbox/settings", json={"inject_empty_pages": True}, timeout=5)
    assert answer.json() == {"inject_empty_pages": True}
    second = run.get(
        "/fleet/vehicles",
        limit=2,
        after=run.get("/fleet/vehicles", limit=2).json()["pagination"]["endCursor"],
    )
    assert second.json()["data"] == [] and second.json()["pagination"]["hasNextPage"] is True

    client = SamsaraClient(run.url, TOKEN, page_size=2)
    try:
        assert sorted(v["id"] for v in client.list_vehicles()) == sorted(v["id"] for v in vehicles)
    finally:
        client.close()
    bad = requests.post(run.url + "/__sandbox/settings", json={"inject_empty_pages": "yes"}, timeout=5)
    assert bad.status_code == 400


def test_driver_by_id_by_external_id_and_404(start) -> None:
    run = start([vehicle(1)])
    assert run.get("/fleet/drivers/5001").json() == {"data": DRIVERS[0]}
    assert run.get("/fleet/drivers/payrollId:12345").json()["data"]["id"] == "5001"
    missing = run.get("/fleet/drivers/9999")
    assert missing.status_code == 404
    assert set(missing.json()) == {"message", "requestId"} and missing.json()["requestId"]
    active = run.get("/fleet/drivers").json()["data"]
    assert [d["id"] for d in active] == ["5001"]
    gone = run.get("/fleet/drivers", driverActivationStatus="deactivated").json()["data"]
    assert [d["id"] for d in gone] == ["5002"]


def test_missing_or_wrong_token_is_401_and_still_counted(start) -> None:
    run = start([vehicle(1)])
    anonymous = requests.get(run.url + "/fleet/vehicles", timeout=5)
    wrong = requests.get(run.url + "/fleet/vehicles", headers={"Authorization": "Bearer nope"}, timeout=5)
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert set(response.json()) == {"message", "requestId"}
    driver = requests.get(
        run.url + "/fleet/drivers/5001", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert driver.status_code == 401
    counts = requests.get(run.url + "/__sandbox/requests", timeout=5).json()
    assert counts == {"total": 3, "by_route": {"GET /fleet/vehicles": 2, "GET /fleet/drivers/{id}": 1}}


def test_rate_limit_answers_429_with_fractional_retry_after_then_recovers(start) -> None:
    run = start([vehicle(1)], rate_per_second=5)
    statuses = [run.get("/fleet/vehicles").status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5
    limited = run.get("/fleet/vehicles")
    assert limited.status_code == 429
    assert set(limited.json()) == {"message", "requestId"}
    retry_after = limited.headers["Retry-After"]
    assert "." in retry_after and 0 < float(retry_after) <= 1.0
    time.sleep(float(retry_after) + 0.05)
    assert run.get("/fleet/vehicles").status_code == 200


def test_faults_injected_at_start_and_at_run_time(start) -> None:
    run = start([vehicle(1)], faults=FaultConfig(error_rate=1.0, seed=1))
    failed = run.get("/fleet/vehicles")
    assert failed.status_code in (500, 502, 503) and set(failed.json()) == {"message", "requestId"}

    requests.post(run.url + "/__sandbox/faults", json={"drop_rate": 1.0}, timeout=5)
    with pytest.raises(requests.ConnectionError):
        run.get("/fleet/vehicles")
    requests.post(run.url + "/__sandbox/faults", json={}, timeout=5)
    assert run.get("/fleet/vehicles").status_code == 200


def test_admin_state_add_remove_and_replace_vehicles_persisting_to_the_state_file(
    start, tmp_path: Path
) -> None:
    run = start([vehicle(1), vehicle(2)])
    state = requests.get(run.url + "/__sandbox/state", timeout=5).json()
    assert state == {"vehicles": [vehicle(1), vehicle(2)], "drivers": DRIVERS}

    assert requests.delete(run.url + f"/__sandbox/vehicles/{vehicle(1)['id']}", timeout=5).status_code == 200
    requests.post(run.url + "/__sandbox/vehicles", json=vehicle(3), timeout=5).raise_for_status()
    assert [v["id"] for v in run.get("/fleet/vehicles").json()["data"]] == [
        vehicle(2)["id"],
        vehicle(3)["id"],
    ]
    assert requests.delete(run.url + "/__sandbox/vehicles/nope", timeout=5).status_code == 404

    reloaded = SamsaraEmulator(run.emulator.state_path, TOKEN, fixture={"vehicles": [], "drivers": []})
    assert [v["id"] for v in reloaded.state()["vehicles"]] == [vehicle(2)["id"], vehicle(3)["id"]]

    replaced = requests.post(run.url + "/__sandbox/state", json={"vehicles": [vehicle(9)]}, timeout=5)
    assert replaced.json() == {"vehicles": [vehicle(9)], "drivers": []}
    assert [v["id"] for v in run.get("/fleet/vehicles").json()["data"]] == [vehicle(9)["id"]]
    invalid = requests.post(run.url + "/__sandbox/state", json={"vehicles": [{"name": "no id"}]}, timeout=5)
    assert invalid.status_code == 400 and "vehicles[0].id" in invalid.json()["message"]
    assert requests.get(run.url + "/__sandbox/requests", timeout=5).json()["by_route"] == {
        "GET /fleet/vehicles": 2
    }


def test_null_fields_are_omitted_like_samsara(start) -> None:
    run = start([vehicle(1, licensePlate=None, notes="")])
    served = run.get("/fleet/vehicles").json()["data"][0]
    assert "licensePlate" not in served and served["notes"] == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"vehicles": {}}), "'vehicles' must be a list"),
        (json.dumps({"vehicles": [{"id": 12}]}), "vehicles[0].id must be a non-empty string"),
        (json.dumps({"vehicle": []}), "unknown key(s) vehicle"),
        (json.dumps({"drivers": [{"id": "1"}, {"id": "1"}]}), "drivers[1].id '1' is a duplicate"),
    ],
)
def test_malformed_state_file_names_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "samsara.json"
    path.write_text(content)
    with pytest.raises(SamsaraFixtureError) as error:
        SamsaraEmulator(path, TOKEN)
    assert str(path) in str(error.value) and problem in str(error.value)
