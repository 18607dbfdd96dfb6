"""SafetyAmp REST API emulator (behaviour per reference/external-apis.md §1).

Start it with the shared harness::

    emulator = SafetyAmpEmulator(Path("state/safetyamp.json"), token="t0k", tenant="acme.safetyamp.com",
                                 fixture=Path("fixtures/safetyamp.json"))
    server = ServerThread(emulator.app).start()   # SAFETYAMP_API_URL = server.url
    ...
    server.stop()                                 # flushes the state file

Behaviour and the choices made where the real API is unknown:

* **Auth**: ``Authorization: Bearer <token>`` is required (401 ``{"message": "Unauthenticated."}``),
  then ``Fqdn: <tenant>`` (compared case-insensitively): missing -> 400
  ``{"message": "Bad Request: The Fqdn header is required."}``, another tenant -> 400
  ``{"message": "Bad Request: Unknown tenant."}`` (chosen: a wrong tenant is a configuration error,
  not an authentication one).
* **Envelope** ``{"data": ...}``. Creates answer **201**, updates 200.
* **Paging**: ``page`` + ``limit``; ``limit`` defaults to **15** (Laravel's per-page default) when
  absent, is clamped to 1..100 (1..``max_page_size``: the
  ``--safetyamp-max-page-size`` sandbox option plays a server with a lower cap), and a non-integer is treated as absent; ``page`` <= 0 or non-integer
  is the first page, so pages 0 and 1 are the same; a page past the end is ``[]``; ``page``
  without ``limit`` -> 400 ``{"message": "Bad Request: A limit is required when using page."}``.
  ``/api/site_clusters`` ignores ``limit``, answers that 400 whenever ``page`` is sent, and returns
  the whole tree (roots with nested ``children``). Records are listed in creation order.
* **Ids**: users get 5-character mixed-case hashids derived from a counter (deterministic);
  every other id is an increasing int continuing after the highest loaded id.
* **Writes**: strings are trimmed and ``""`` becomes null (Laravel middleware); unknown fields are
  ignored. PATCH validates and writes only the fields sent. PUT on users validates first_name,
  last_name and email as required (external-apis §1.6) and then writes the fields sent; PUT on
  site_clusters requires name, parent_cluster_id and osha_establishment; PUT on assets requires
  site_id; PUT on sites behaves like PATCH. Creates: users need first_name, last_name, email (and
  get the ``account_default`` role when no roles are sent); sites need name and cluster_id;
  clusters need name, parent_cluster_id (so no new root) and osha_establishment; titles need
  name; assets need name, site_id and asset_type_id, and the asset type's site must be the
  asset's site. Users accept ``current_title_id``, ``roles`` (``[{"id": n}]`` or ids) /
  ``role_ids`` and ``sites`` / ``site_ids``. Asset serials are not unique.
* **422** bodies are Laravel's: ``{"message": "<first>[ (and N more error[s])]", "errors": {...}}``;
  the messages are in :mod:`safetyamp_validation`.
* **Rate limit**: per token sliding window (default 60 per 60 s); 429 body
  ``{"message": "Too Many Attempts."}`` pretty-printed with 4 spaces, ``Retry-After`` in whole
  seconds, ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` on every authenticated answer.
* **State**: ``state_path`` is loaded at start when it exists (a previous run), otherwise
  ``fixture`` (DESIGN §6 ``safetyamp.json`` shape), otherwise empty. Writes are saved with a
  debounce (see :mod:`safetyamp_persistence` for the trade-off) and flushed on
  ``GET /__sandbox/state`` and on shutdown. The state file holds the compact form (users with
  ``current_title_id`` / ``role_ids`` / ``site_ids``), which is itself a valid fixture;
  ``GET /__sandbox/state`` answers the GET shape with flat clusters.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safetyamp_pipeline.sandbox.safetyamp_persistence import DebouncedJsonSaver
from safetyamp_pipeline.sandbox.safetyamp_store import MODEL_NAMES, FixtureError, SafetyAmpState
from safetyamp_pipeline.sandbox.safetyamp_validation import VALIDATORS, clean_input
from safetyamp_pipeline.sandbox.server import Emulator, FaultConfig, SlidingWindowRateLimiter, build_app

DEFAULT_LIMIT = 15
_INTEGER = re.compile(r"-?\d{1,9}")
MAX_LIMIT = 100
PAGE_WITHOUT_LIMIT = "Bad Request: A limit is required when using page."
TOO_MANY_ATTEMPTS_BODY = json.dumps({"message": "Too Many Attempts."}, indent=4)

# path segment -> (entity, methods on the collection, methods on one record)
ENDPOINTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "users": ("users", ("GET", "POST"), ("GET", "PATCH", "PUT")),
    "sites": ("sites", ("GET", "POST"), ("GET", "PUT")),
    "site_clusters": ("site_clusters", ("GET", "POST"), ("GET", "PUT", "PATCH")),
    "user_titles": ("user_titles", ("GET", "POST"), ("GET",)),
    "roles": ("roles", ("GET",), ("GET",)),
    "asset_types": ("asset_types", ("GET",), ("GET",)),
    "assets": ("assets", ("GET", "POST"), ("GET", "PUT")),
}

__all__ = ["FixtureError", "SafetyAmpEmulator"]


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def _message(text: str, status: int) -> Response:
    return JSONResponse({"message": text}, status_code=status)


class SafetyAmpEmulator(Emulator):
    def __init__(
        self,
        state_path: Path,
        token: str,
        tenant: str,
        fixture: Path | None = None,
        rate_limit: int | None = 60,
        rate_window: float = 60.0,
        faults: FaultConfig | None = None,
        save_interval: float = 0.2,
        max_page_size: int = MAX_LIMIT,
    ) -> None:
        if max_page_size < 1:
            raise ValueError("SafetyAmpEmulator max_page_size must be at least 1")
        self.max_page_size = max_page_size
        limiter = SlidingWindowRateLimiter(rate_limit, rate_window) if rate_limit else None
        super().__init__("safetyamp", rate_limiter=limiter, faults=faults)
        if not token:
            raise ValueError("SafetyAmpEmulator needs a non-empty token")
        if not tenant:
            raise ValueError("SafetyAmpEmulator needs a non-empty tenant")
        self.state_path = Path(state_path)
        self.tenant = tenant
        self._token = token.encode()
        if self.state_path.exists():
            self.store = SafetyAmpState.from_file(self.state_path)
        elif fixture is not None:
            self.store = SafetyAmpState.from_file(Path(fixture))
        else:
            self.store = SafetyAmpState()
        self._saver = DebouncedJsonSaver(self.state_path, self._snapshot, save_interval)
        if not self.state_path.exists():
            self._saver.mark_dirty()
            self._saver.flush()
        self.app = build_app(
            self,
            self._routes(),
            exception_handlers={HTTPException: self._http_exception},
        )

    # ------------------------------------------------------------------ harness hooks
    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            return _message("Unauthenticated.", 401)
        fqdn = request.headers.get("fqdn", "").strip()
        if not fqdn:
            return _message("Bad Request: The Fqdn header is required.", 400)
        if fqdn.lower() != self.tenant.lower():
            return _message("Bad Request: Unknown tenant.", 400)
        return None

    def too_many_requests_response(self) -> Response:
        return Response(TOO_MANY_ATTEMPTS_BODY, status_code=429, media_type="application/json")

    def fault_response(self, status: int) -> Response:
        text = "Server Error" if status == 500 else HTTPStatus(status).phrase
        return _message(text, status)

    def state(self) -> dict[str, Any]:
        return self.store.rendered_document()

    def flush(self) -> None:
        self._saver.flush()

    def shutdown(self) -> None:
        self._saver.flush()

    def close(self) -> None:
        """Stop the background saver (after a final save); the emulator must not serve afterwards."""
        self._saver.close()

    def _snapshot(self) -> dict[str, Any]:
        with self.store.lock:
            return self.store.compact_document()

    # ------------------------------------------------------------------ routing
    def _routes(self) -> list[Route]:
        routes = []
        for segment, (entity, collection_methods, item_methods) in ENDPOINTS.items():
            routes.append(
                Route(f"/api/{segment}", self._collection(entity), methods=list(collection_methods))
            )
            routes.append(Route(f"/api/{segment}/{{id}}", self._item(entity), methods=list(item_methods)))
        return routes

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = ", ".join(
                sorted(m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip())
            )
            text = (
                f"The {request.method} method is not supported for this route. Supported methods: {allowed}."
            )
            return JSONResponse({"message": text}, status_code=405, headers=exc.headers)
        if exc.status_code == 404:
            return _message(f"The route {request.url.path.lstrip('/')} could not be found.", 404)
        return _message(str(exc.detail), exc.status_code)

    def _collection(self, entity: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if request.method == "POST":
                return self._create(entity, await _read_json(request))
            return self._list(entity, request)

        return endpoint

    def _item(self, entity: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            raw_id = request.path_params["id"]
            record_id = raw_id if entity == "users" else (int(raw_id) if raw_id.isdigit() else None)
            if request.method == "GET":
                with self.store.lock:
                    record = self.store.get(entity, record_id)
                    if record is None:
                        return self._not_found(entity, raw_id)
                    return _json({"data": self.store.render(entity, record)})
            return self._update(entity, record_id, raw_id, request.method.lower(), await _read_json(request))

        return endpoint

    # ------------------------------------------------------------------ handlers
    def _list(self, entity: str, request: Request) -> Response:
        params = request.query_params
        if entity == "site_clusters":
            if "page" in params:
                return _message(PAGE_WITHOUT_LIMIT, 400)
            with self.store.lock:
                return _json({"data": self.store.cluster_tree()})
        limit = _int_param(params.get("limit"))
        if "page" in params and limit is None:
            return _message(PAGE_WITHOUT_LIMIT, 400)
        limit = min(max(limit if limit is not None else DEFAULT_LIMIT, 1), self.max_page_size)
        page = max(_int_param(params.get("page")) or 1, 1)
        with self.store.lock:
            rows = self.store.page(entity, (page - 1) * limit, limit)
            return _json({"data": [self.store.render(entity, r) for r in rows]})

    def _create(self, entity: str, data: dict[str, Any]) -> Response:
        validator = VALIDATORS[entity]
        with self.store.lock:
            changes, errors = validator(data, self.store, "create", None)
            if errors:
                return _json(errors.body(), 422)
            record = self.store.insert(entity, changes)
            body = {"data": self.store.render(entity, record)}
        self._saver.mark_dirty()
        return _json(body, 201)

    def _update(self, entity: str, record_id: Any, raw_id: str, mode: str, data: dict[str, Any]) -> Response:
        validator = VALIDATORS[entity]
        with self.store.lock:
            current = self.store.get(entity, record_id)
            if current is None:
                return self._not_found(entity, raw_id)
            changes, errors = validator(data, self.store, mode, current)
            if errors:
                return _json(errors.body(), 422)
            record = self.store.update(entity, record_id, changes)
            body = {"data": self.store.render(entity, record)}
        self._saver.mark_dirty()
        return _json(body)

    @staticmethod
    def _not_found(entity: str, raw_id: str) -> Response:
        return _message(f"No query results for model [App\\Models\\{MODEL_NAMES[entity]}] {raw_id}", 404)


async def _read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object; anything else (invalid JSON, a list) reads as no input, as in Laravel."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return clean_input(data) if isinstance(data, dict) else {}


def _int_param(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if _INTEGER.fullmatch(text) else None
