"""SafetyAmp REST client (plain Python; the Dagster resource wraps it).

* Bearer token + `Fqdn` tenant header on every request, one `requests.Session`, connect and read
  timeouts, a client-side `TokenBucket` (60 requests per 60 s by default) so that a sync does not
  cause 429s, and the retry rules of `clients.http` (429 `Retry-After`, bounded 5xx/connection
  retries, capped total wait, no blind retry of a POST: see `AmbiguousWrite`).
* Every failure is a typed exception from `clients.errors`; nothing becomes an empty result.
* `list(entity)` reads every page (`limit` = `page_size`, 100 by default), de-duplicates by id,
  and fails as a whole when any page fails. SafetyAmp's cap on `limit` is undocumented and a
  server may silently grant fewer records per page than asked, so a page shorter than the limit
  ends a list only when it is empty or shorter than what the server is known to grant: the
  largest page it has returned so far, on any list (DESIGN §7 speaks of one server cap; learned
  from the first page and kept for the client's later listings). Until a page at least as long
  was seen, a short page costs one more request (the empty page after it).
  Whether the server counts pages from 0 or from 1 (treating 0 as 1) is not documented either:
  the first listing starts at page 0 and, if page 1 repeats page 0, the client knows pages start
  at 1 and starts later listings there (one extra request per client at most).
* `site_clusters` is one unpaged tree; `list("site_clusters")` flattens it (depth first,
  `children` removed, `parent_cluster_id` kept or filled from the parent node).
* `dry_run=True`: reads are sent, writes are only logged and return the payload marked
  `{"__dry_run__": True, ...}`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from safetyamp_pipeline.clients.errors import ConfigError, MalformedResponse, MalformedWriteResponse
from safetyamp_pipeline.clients.http import (
    EnvironmentOnceSession,
    HttpTransport,
    Redactor,
    RequestStats,
    RetryPolicy,
)
from safetyamp_pipeline.clients.rate_limit import RateLimiter, TokenBucket

DRY_RUN_MARK = "__dry_run__"
TREE_ENTITIES = frozenset({"site_clusters"})
WRITE_METHODS = frozenset({"PATCH", "PUT"})
_ENTITY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_PAGES = 10_000

_log = logging.getLogger(__name__)


def origin_of(base_url: str, setting: str) -> str:
    """`base_url` checked to be an origin (scheme://host[:port]) and without a trailing slash."""
    if not base_url or not base_url.strip():
        raise ConfigError(f"{setting} is not set")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{setting} must be an http(s) origin such as https://api.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{setting} must be an origin without a path (the client adds the API path itself)"
        )
    return f"{parts.scheme}://{parts.netloc}"


class SafetyAmpClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        fqdn: str,
        *,
        requests_per_window: int = 60,
        window_seconds: float = 60.0,
        timeout: tuple[float, float] = (5, 30),
        max_retries: int = 4,
        max_total_wait: float = 300,
        dry_run: bool = False,
        page_size: int = 100,
        logger: logging.Logger | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = origin_of(base_url, "SafetyAmp base URL (SAFETYAMP_API_URL)")
        if not token:
            raise ConfigError("SafetyAmp token (SAFETYAMP_TOKEN) is not set")
        if not fqdn:
            raise ConfigError("SafetyAmp tenant host (SAFETYAMP_FQDN) is not set")
        if page_size < 1:
            raise ConfigError("SafetyAmp page_size must be at least 1")
        self.dry_run = dry_run
        self.page_size = page_size
        self.log = logger or _log
        self.session = session or EnvironmentOnceSession()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Fqdn": fqdn,
                "Accept": "application/json",
                "User-Agent": "safetyamp-pipeline",
            }
        )
        # `limiter` shares one budget between processes (store.rate_budget); else this client's own.
        self.bucket: RateLimiter = (
            limiter if limiter is not None else TokenBucket(requests_per_window, window_seconds, clock=clock, sleep=sleep)
        )
        self._http = HttpTransport(
            service="SafetyAmp",
            session=self.session,
            timeout=timeout,
            policy=RetryPolicy(max_retries=max_retries, max_total_wait=max_total_wait),
            bucket=self.bucket,
            redact=Redactor([token]),
            logger=self.log,
            sleep=sleep,
            rng=rng,
        )
        self._first_page: int | None = None  # 0 or 1 once known (see module docstring)
        self._granted = 0  # the most records the server has returned on one page: a lower bound of its cap

    @property
    def stats(self) -> RequestStats:
        return self._http.stats

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SafetyAmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def list(self, entity: str) -> list[dict[str, Any]]:
        """Every record of `entity`, complete or not at all."""
        _check_entity(entity)
        if entity in TREE_ENTITIES:
            return self._list_tree(entity)
        route = f"/api/{entity}"
        records: dict[str, dict[str, Any]] = {}
        page = self._first_page if self._first_page is not None else 0
        for _ in range(_MAX_PAGES):
            items = self._read_page(route, page)
            new = _merge(records, items, route, page, self.base_url)
            detected_now = False
            if page == 1 and self._first_page is None:
                # page 0 held records; a server counting from 1 answers page 1 with them again
                self._first_page = 1 if items and new == 0 else 0
                detected_now = self._first_page == 1
            if not items or (len(items) < self.page_size and len(items) < self._granted):
                break
            self._granted = max(self._granted, len(items))
            if new == 0 and not detected_now:
                raise MalformedResponse(
                    f"SafetyAmp GET {route}: page {page} only repeats records already read; "
                    "the pagination does not advance",
                    method="GET",
                    url=self.base_url + route,
                )
            page += 1
        else:
            raise MalformedResponse(
                f"SafetyAmp GET {route}: more than {_MAX_PAGES} full pages; giving up",
                method="GET",
                url=self.base_url + route,
            )
        return list(records.values())

    def get(self, entity: str, record_id: str | int) -> dict[str, Any]:
        _check_entity(entity)
        route = f"/api/{entity}/{{id}}"
        response = self._http.request("GET", self._record_url(entity, record_id), route=route)
        return self._record_from(response, "GET", route, write=False)

    # -- writes --------------------------------------------------------------------------------

    def create(self, entity: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record; returns the server's record (from `data`).

        Raises AmbiguousWrite when the request may have reached the server but no usable answer
        came back: re-read the collection before sending the create again."""
        _check_entity(entity)
        route = f"/api/{entity}"
        if self.dry_run:
            return self._planned("POST", route, dict(payload))
        self.log.debug("SafetyAmp POST %s: sending fields %s", route, _keys(payload))
        response = self._http.request(
            "POST", self.base_url + route, route=route, json_body=dict(payload)
        )
        return self._record_from(response, "POST", route, write=True)

    def update(
        self,
        entity: str,
        record_id: str | int,
        payload: Mapping[str, Any],
        method: str = "PATCH",
    ) -> dict[str, Any]:
        """PATCH (or PUT) a record; returns the server's record (from `data`)."""
        _check_entity(entity)
        method = method.upper()
        if method not in WRITE_METHODS:
            raise ValueError(f"update method must be PATCH or PUT, got {method!r}")
        route = f"/api/{entity}/{{id}}"
        if self.dry_run:
            return self._planned(method, route, {"id": record_id, **payload})
        self.log.debug("SafetyAmp %s %s: sending fields %s", method, route, _keys(payload))
        response = self._http.request(
            method, self._record_url(entity, record_id), route=route, json_body=dict(payload)
        )
        return self._record_from(response, method, route, write=True)

    # -- helpers -------------------------------------------------------------------------------

    def _record_url(self, entity: str, record_id: str | int) -> str:
        if record_id is None or str(record_id) == "":
            raise ValueError(f"a SafetyAmp {entity} id is required")
        return f"{self.base_url}/api/{entity}/{quote(str(record_id), safe='')}"

    def _planned(self, method: str, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.stats.planned_writes_by_route[f"{method} {route}"] += 1
        self.log.info("SafetyAmp dry run: would send %s %s with fields %s", method, route, _keys(payload))
        return {DRY_RUN_MARK: True, **payload}

    def _envelope_data(self, response: requests.Response, method: str, route: str, *, write: bool) -> Any:
        body = self._http.json_of(response, method, route, write=write)
        if not isinstance(body, dict) or "data" not in body:
            raise self._malformed(method, route, response, "the body has no `data` member", write)
        return body["data"]

    def _record_from(
        self, response: requests.Response, method: str, route: str, *, write: bool
    ) -> dict[str, Any]:
        data = self._envelope_data(response, method, route, write=write)
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            raise self._malformed(method, route, response, "`data` is not a record with an id", write)
        return data

    def _read_page(self, route: str, page: int) -> list[dict[str, Any]]:
        response = self._http.request(
            "GET", self.base_url + route, route=route, params={"page": page, "limit": self.page_size}
        )
        data = self._envelope_data(response, "GET", route, write=False)
        if not isinstance(data, list):
            raise self._malformed("GET", route, response, f"`data` of page {page} is not a list", False)
        return data

    def _list_tree(self, entity: str) -> list[dict[str, Any]]:
        route = f"/api/{entity}"
        response = self._http.request("GET", self.base_url + route, route=route)
        roots = self._envelope_data(response, "GET", route, write=False)
        if not isinstance(roots, list):
            raise self._malformed("GET", route, response, "`data` is not a list", False)
        records: dict[str, dict[str, Any]] = {}
        stack: list[tuple[Any, Any]] = [(node, None) for node in reversed(roots)]
        while stack:
            node, parent_id = stack.pop()
            if not isinstance(node, dict) or node.get("id") in (None, ""):
                raise self._malformed("GET", route, response, "a tree node is not a record with an id", False)
            flat = {key: value for key, value in node.items() if key != "children"}
            if flat.get("parent_cluster_id") is None and parent_id is not None:
                flat["parent_cluster_id"] = parent_id
            records[str(flat["id"])] = flat
            children = node.get("children") or []
            if not isinstance(children, list):
                raise self._malformed("GET", route, response, "`children` is not a list", False)
            stack.extend((child, flat["id"]) for child in reversed(children))
        return list(records.values())

    @staticmethod
    def _malformed(
        method: str, route: str, response: requests.Response, what: str, write: bool
    ) -> MalformedResponse:
        error = MalformedWriteResponse if write else MalformedResponse
        suffix = " (the write may have happened - re-read before retrying)" if write else ""
        return error(
            f"SafetyAmp {method} {route}: malformed answer, {what}{suffix}",
            status=response.status_code,
            method=method,
            url=response.url,
        )


def _check_entity(entity: str) -> None:
    if not isinstance(entity, str) or not _ENTITY_NAME.match(entity):
        raise ValueError(f"not a SafetyAmp entity name: {entity!r}")


def _merge(records: dict[str, dict[str, Any]], items: list[Any], route: str, page: int, base_url: str) -> int:
    """Add a page's records keyed by id; returns how many ids were new."""
    new = 0
    for item in items:
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise MalformedResponse(
                f"SafetyAmp GET {route}: page {page} holds an item that is not a record with an id",
                method="GET",
                url=base_url + route,
            )
        key = str(item["id"])
        if key not in records:
            new += 1
        records[key] = item
    return new


def _keys(payload: Mapping[str, Any]) -> str:
    """Field names only: values may be personal data."""
    return ", ".join(sorted(str(key) for key in payload)) or "(none)"
