"""SamsaraClient against the Samsara emulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safetyamp_pipeline.clients.errors import MalformedResponse, RetriesExhausted, Unauthorized
from safetyamp_pipeline.clients.samsara import SamsaraClient
from safetyamp_pipeline.sandbox.samsara_emulator import SamsaraEmulator
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TOKEN = "samsara-test-token-41d2"


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fleet(vehicles: int, drivers: int = 3) -> dict[str, Any]:
    return {
        "vehicles": [
            {
                "id": str(281474976710000 + n),
                "name": f"Truck {n}",
                "serial": f"G{n:09d}",
                "createdAtTime": "2024-01-02T03:04:05Z",
            }
            for n in range(vehicles)
        ],
        "drivers": [
            {"id": f"{5000 + n}", "name": f"Driver {n}", "notes": f"Emp #{1200 + n}",
             "externalIds": {"payrollId": str(1200 + n)}}
            for n in range(drivers)
        ],
    }


@contextmanager
def emulator(
    tmp_path: Path,
    *,
    vehicles: int = 5,
    drivers: int = 3,
    rate_per_second: int | None = None,
    faults: FaultConfig | None = None,
    inject_empty_pages: bool = False,
) -> Iterator[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = SamsaraEmulator(
        tmp_path / "samsara.json",
        TOKEN,
        fixture=fleet(vehicles, drivers),
        rate_per_second=rate_per_second,
        faults=faults,
        inject_empty_pages=inject_empty_pages,
    )
    server = ServerThread(app.app).start()
    try:
        yield server.url
    finally:
        server.stop()


def counts(url: str) -> dict[str, Any]:
    return requests.get(url + "/__sandbox/requests", timeout=5).json()


def test_paging_follows_the_cursor_across_empty_pages_until_has_next_page_is_false(tmp_path: Path) -> None:
    with emulator(tmp_path, vehicles=1100, inject_empty_pages=True) as url:
        vehicles = SamsaraClient(url, TOKEN).list_vehicles()
        seen = counts(url)
    assert len(vehicles) == 1100
    assert {v["id"] for v in vehicles} == {str(281474976710000 + n) for n in range(1100)}
    # 512 + empty + 512 + empty + 76: a client that stopped at the first empty page would
    # have returned 512 vehicles after 2 requests.
    assert seen["by_route"] == {"GET /fleet/vehicles": 5}


def test_paging_uses_the_largest_page(tmp_path: Path) -> None:
    with emulator(tmp_path, vehicles=1024) as url:
        vehicles = SamsaraClient(url, TOKEN).list_vehicles()
        seen = counts(url)
    assert len(vehicles) == 1024
    assert seen["by_route"] == {"GET /fleet/vehicles": 2}


def test_25_requests_per_second_draws_no_429(tmp_path: Path) -> None:
    with emulator(tmp_path, drivers=40, rate_per_second=25) as url:
        samsara = SamsaraClient(url, TOKEN, requests_per_second=25)
        started = time.monotonic()
        for n in range(40):
            assert samsara.get_driver(str(5000 + n)) is not None
        elapsed = time.monotonic() - started
        seen = counts(url)
    assert seen["total"] == 40
    assert samsara.stats.rate_limited_responses == 0
    assert elapsed >= 1.0


def test_a_429_with_a_fractional_retry_after_is_waited_out(tmp_path: Path) -> None:
    with emulator(tmp_path, drivers=80, rate_per_second=25) as url:
        samsara = SamsaraClient(url, TOKEN, requests_per_second=1000)
        drivers = [samsara.get_driver(str(5000 + n)) for n in range(80)]
        seen = counts(url)
    assert all(d is not None for d in drivers)
    assert samsara.stats.rate_limited_responses > 0
    assert seen["total"] == 80 + samsara.stats.rate_limited_responses
    waited = samsara.stats.retry_after_wait_seconds
    assert 0 < waited < samsara.stats.rate_limited_responses  # sub-second waits, not rounded up


def test_drivers_are_read_once_per_client_and_an_unknown_driver_is_none(tmp_path: Path) -> None:
    with emulator(tmp_path) as url:
        samsara = SamsaraClient(url, TOKEN)
        first = samsara.get_driver("5001")
        again = samsara.get_driver("5001")
        missing = samsara.get_driver("999999")
        missing_again = samsara.get_driver("999999")
        by_external_id = samsara.get_driver("payrollId:1202")
        seen = counts(url)
        fresh = SamsaraClient(url, TOKEN).get_driver("5001")
        seen_after_new_client = counts(url)
    assert first is again
    assert first is not None and first["notes"] == "Emp #1201"
    assert missing is None and missing_again is None
    assert by_external_id is not None and by_external_id["id"] == "5002"
    assert seen["by_route"] == {"GET /fleet/drivers/{id}": 3}
    assert fresh == first
    assert seen_after_new_client["by_route"] == {"GET /fleet/drivers/{id}": 4}


def test_server_errors_are_retried_then_surface(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(error_rate=1.0, error_statuses=(500,))) as url:
        samsara = SamsaraClient(url, TOKEN, max_retries=2, sleep=sleep)
        with pytest.raises(RetriesExhausted) as caught:
            samsara.list_vehicles()
        seen = counts(url)
    assert caught.value.status == 500
    assert "Samsara GET /fleet/vehicles" in str(caught.value)
    assert seen["total"] == 3
    assert len(sleep.waits) == 2


def test_a_read_timeout_is_retried_then_surfaces(tmp_path: Path) -> None:
    with emulator(tmp_path, faults=FaultConfig(latency_ms=500)) as url:
        samsara = SamsaraClient(url, TOKEN, max_retries=1, timeout=(2, 0.1), sleep=RecordingSleep())
        with pytest.raises(RetriesExhausted, match="ReadTimeout"):
            samsara.list_vehicles()


def test_a_failed_page_fails_the_listing(tmp_path: Path) -> None:
    session = requests.Session()
    answered: list[str] = []

    def break_after_first_page(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        answered.append(response.url)
        if len(answered) == 1:
            requests.post(url + "/__sandbox/faults", json={"error_rate": 1.0}, timeout=5).raise_for_status()

    session.hooks["response"].append(break_after_first_page)
    with emulator(tmp_path, vehicles=600) as url:
        samsara = SamsaraClient(url, TOKEN, session=session, max_retries=1, sleep=RecordingSleep())
        with pytest.raises(RetriesExhausted):
            samsara.list_vehicles()
    assert len(answered) == 3


def test_a_wrong_token_is_unauthorized(tmp_path: Path) -> None:
    with emulator(tmp_path) as url, pytest.raises(Unauthorized) as caught:
        SamsaraClient(url, "wrong-token-xyz").list_vehicles()
    assert caught.value.status == 401
    assert "wrong-token-xyz" not in str(caught.value)


def _broken_pagination_app() -> Starlette:
    async def vehicles(request: Request) -> Response:
        if request.query_params.get("after"):
            return Response("<html>oops</html>", media_type="text/html")
        kind = request.headers.get("X-Kind")
        if kind == "no-cursor":
            return JSONResponse({"data": [{"id": "1"}], "pagination": {"endCursor": "", "hasNextPage": True}})
        if kind == "no-pagination":
            return JSONResponse({"data": [{"id": "1"}]})
        return JSONResponse({"data": [{"id": "1"}], "pagination": {"endCursor": "c1", "hasNextPage": True}})

    return Starlette(routes=[Route("/fleet/vehicles", vehicles)])


@pytest.mark.parametrize(
    "kind, problem",
    [("no-cursor", "endCursor is missing"), ("no-pagination", "hasNextPage"), ("html-next", "not valid JSON")],
)
def test_malformed_pages_are_errors_not_short_lists(kind: str, problem: str) -> None:
    with ServerThread(_broken_pagination_app()) as server:
        session = requests.Session()
        session.headers["X-Kind"] = kind
        with pytest.raises(MalformedResponse, match=problem) as caught:
            SamsaraClient(server.url, TOKEN, session=session).list_vehicles()
    assert "GET /fleet/vehicles" in str(caught.value)


def test_a_fractional_rate_spaces_requests_evenly(tmp_path: Path) -> None:
    class FakeClock:
        now = 0.0
        waits: list[float] = []

        def __call__(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.waits.append(seconds)
            self.now += seconds

    clock = FakeClock()
    with emulator(tmp_path) as url:
        samsara = SamsaraClient(url, TOKEN, requests_per_second=2.5, clock=clock, sleep=clock.sleep)
        for driver in ("5000", "5001", "5002"):
            samsara.get_driver(driver)
    assert clock.waits == pytest.approx([0.4, 0.4])


def test_many_wanted_drivers_are_read_from_the_paged_lists_few_one_by_one(tmp_path: Path) -> None:
    data = fleet(0, drivers=60)
    for driver in data["drivers"][:30]:
        driver["driverActivationStatus"] = "deactivated"
    app = SamsaraEmulator(tmp_path / "samsara.json", TOKEN, fixture=data)
    server = ServerThread(app.app).start()
    try:
        many = SamsaraClient(server.url, TOKEN, page_size=20)
        wanted = [str(5000 + n) for n in range(60)] + ["999998", "999999"]
        many.prefetch_drivers(wanted)
        records = {d: many.get_driver(d) for d in wanted}
        seen_many = counts(server.url)
        requests.post(f"{server.url}/__sandbox/requests/reset", timeout=5)
        few = SamsaraClient(server.url, TOKEN)
        few.prefetch_drivers(["5001", "5002"])
        few_records = [few.get_driver("5001"), few.get_driver("5002")]
        seen_few = counts(server.url)
    finally:
        server.stop()
    # 30 active and 30 deactivated drivers, 20 a page: two pages of each list, then the two unknown
    # ids one by one (62 look-ups would have cost 62 requests).
    assert seen_many["by_route"] == {"GET /fleet/drivers": 4, "GET /fleet/drivers/{id}": 2}
    assert records["5000"] is not None and records["5000"]["externalIds"] == {"payrollId": "1200"}
    assert records["5059"] is not None and records["5059"]["notes"] == "Emp #1259"
    assert records["999998"] is None and records["999999"] is None
    assert seen_few["by_route"] == {"GET /fleet/drivers/{id}": 2}
    assert [r["id"] for r in few_records if r] == ["5001", "5002"]
