"""Samsara fleet API client (plain Python; the Dagster resource wraps it).

* `list_vehicles()` follows the cursor (`after` = `pagination.endCursor`) while
  `pagination.hasNextPage` is true. Samsara documents that a page can be short or even empty
  while more data remains, so neither ends the loop.
* `get_driver(id)` reads `/fleet/drivers/{id}` once per client instance (the answer, including
  "no such driver" = 404 -> None, is cached for the run); `prefetch_drivers(ids)` fills that cache
  from the paged `/fleet/drivers` lists when many drivers are wanted at once.
* 25 requests per second client-side, fractional `Retry-After`, the shared retry rules of
  `clients.http` and the typed errors of `clients.errors`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import quote

import requests

from safetyamp_pipeline.clients.errors import ConfigError, MalformedResponse, NotFound
from safetyamp_pipeline.clients.http import (
    EnvironmentOnceSession,
    HttpTransport,
    Redactor,
    RequestStats,
    RetryPolicy,
)
from safetyamp_pipeline.clients.rate_limit import TokenBucket
from safetyamp_pipeline.clients.safetyamp import origin_of

VEHICLES_ROUTE = "/fleet/vehicles"
DRIVER_ROUTE = "/fleet/drivers/{id}"
DRIVERS_ROUTE = "/fleet/drivers"
# From this many uncached drivers on, the paged driver lists are cheaper than one GET each.
DRIVER_LIST_THRESHOLD = 25
_MAX_PAGES = 10_000

_log = logging.getLogger(__name__)


class SamsaraClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        requests_per_second: float = 25,
        timeout: tuple[float, float] = (5, 30),
        max_retries: int = 4,
        max_total_wait: float = 120,
        page_size: int = 512,
        logger: logging.Logger | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = origin_of(base_url, "Samsara base URL (SAMSARA_API_URL)")
        if not token:
            raise ConfigError("Samsara token (SAMSARA_API_TOKEN) is not set")
        self.page_size = page_size
        self.log = logger or _log
        self.session = session or EnvironmentOnceSession()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "safetyamp-pipeline",
            }
        )
        if requests_per_second <= 0:
            raise ConfigError("Samsara requests_per_second must be positive")
        if float(requests_per_second).is_integer():
            rate, period = int(requests_per_second), 1.0
        else:  # e.g. 2.5/s: one request per 0.4 s
            rate, period = 1, 1.0 / requests_per_second
        self.bucket = TokenBucket(rate, period, clock=clock, sleep=sleep)
        self._http = HttpTransport(
            service="Samsara",
            session=self.session,
            timeout=timeout,
            policy=RetryPolicy(max_retries=max_retries, max_total_wait=max_total_wait),
            bucket=self.bucket,
            redact=Redactor([token]),
            logger=self.log,
            sleep=sleep,
            rng=rng,
        )
        self._drivers: dict[str, dict[str, Any] | None] = {}

    @property
    def stats(self) -> RequestStats:
        return self._http.stats

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SamsaraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_vehicles(self) -> list[dict[str, Any]]:
        """Every vehicle, complete or not at all (a failed page fails the whole listing)."""
        return self._list_all(VEHICLES_ROUTE, {}, "vehicle")

    def list_drivers(self, activation_status: str = "active") -> list[dict[str, Any]]:
        """Every driver of one activation status (``active`` or ``deactivated``); each one is also
        cached for `get_driver`."""
        drivers = self._list_all(DRIVERS_ROUTE, {"driverActivationStatus": activation_status}, "driver")
        for driver in drivers:
            self._drivers[str(driver["id"])] = driver
        return drivers

    def prefetch_drivers(self, driver_ids: Collection[str]) -> None:
        """Makes `get_driver` answer these ids from the cache at the fewest requests: one GET per
        driver for a few, the paged driver lists (active, then deactivated) when many are wanted,
        e.g. on a first load (800 vehicles: 2 listing pages instead of ~700 look-ups at 25/s)."""
        missing = {str(d) for d in driver_ids if d} - self._drivers.keys()
        for status in ("active", "deactivated"):
            if len(missing) < DRIVER_LIST_THRESHOLD:
                break
            self.list_drivers(status)
            missing -= self._drivers.keys()
        # The rest (few, or not in either list) are read one by one by get_driver.

    def _list_all(self, route: str, extra: dict[str, Any], what: str) -> list[dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {"limit": self.page_size, **extra}
            if cursor:
                params["after"] = cursor
            response = self._http.request("GET", self.base_url + route, route=route, params=params)
            data, has_next, end_cursor = self._page(response, route, what)
            for record in data:
                records[str(record["id"])] = record
            if not has_next:
                return list(records.values())
            if not end_cursor or end_cursor in seen_cursors:
                raise self._malformed(response, route, "hasNextPage is true but endCursor is missing or repeated")
            seen_cursors.add(end_cursor)
            cursor = end_cursor
        raise MalformedResponse(
            f"Samsara GET {route}: more than {_MAX_PAGES} pages; giving up",
            method="GET",
            url=self.base_url + route,
        )

    def get_driver(self, driver_id: str) -> dict[str, Any] | None:
        """The driver record, or None when Samsara has no such driver (404). Cached per client."""
        key = str(driver_id)
        if not key:
            raise ValueError("a Samsara driver id is required")
        if key in self._drivers:
            return self._drivers[key]
        url = f"{self.base_url}/fleet/drivers/{quote(key, safe=':')}"
        try:
            response = self._http.request("GET", url, route=DRIVER_ROUTE)
        except NotFound:
            self._drivers[key] = None
            return None
        body = self._http.json_of(response, "GET", DRIVER_ROUTE)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            raise self._malformed(response, DRIVER_ROUTE, "`data` is not a driver record with an id")
        self._drivers[key] = data
        return data

    def _page(
        self, response: requests.Response, route: str = VEHICLES_ROUTE, what: str = "vehicle"
    ) -> tuple[list[dict[str, Any]], bool, str | None]:
        body = self._http.json_of(response, "GET", route)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self._malformed(response, route, "`data` is missing or not a list")
        pagination = body.get("pagination")
        if not isinstance(pagination, dict) or not isinstance(pagination.get("hasNextPage"), bool):
            raise self._malformed(response, route, "`pagination.hasNextPage` is missing")
        for record in body["data"]:
            if not isinstance(record, dict) or record.get("id") in (None, ""):
                raise self._malformed(response, route, f"an item is not a {what} with an id")
        end_cursor = pagination.get("endCursor")
        return body["data"], pagination["hasNextPage"], end_cursor if isinstance(end_cursor, str) else None

    @staticmethod
    def _malformed(response: requests.Response, route: str, what: str) -> MalformedResponse:
        return MalformedResponse(
            f"Samsara GET {route}: malformed answer, {what}",
            status=response.status_code,
            method="GET",
            url=response.url,
        )
