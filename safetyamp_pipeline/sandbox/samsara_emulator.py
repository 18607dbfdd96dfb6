"""Samsara fleet API emulator (external-apis §2) on the shared sandbox harness.

API routes (Bearer token required, 25 requests/s per token with a fractional ``Retry-After``):

* ``GET /fleet/vehicles`` - ``limit`` (default and max 512, larger values are clamped) and
  ``after`` (opaque cursor); answers ``{"data": [...], "pagination": {"endCursor", "hasNextPage"}}``
  with ``endCursor == ""`` on the last page.
* ``GET /fleet/drivers`` - same paging, ``driverActivationStatus`` (``active`` default | ``deactivated``).
* ``GET /fleet/drivers/{id}`` - ``{"data": driver}``; ``{id}`` may be an external id ``key:value``.

Errors are ``{"message", "requestId"}``. Records are served as stored, minus keys whose value is
``null`` (Samsara omits empty values).

Admin routes besides the harness's: ``POST /__sandbox/state`` replaces the whole state (same
shape as ``samsara.json``), ``POST /__sandbox/vehicles`` adds or replaces one vehicle,
``DELETE /__sandbox/vehicles/{id}`` removes one, ``GET/POST /__sandbox/settings`` reads/sets
``{"inject_empty_pages": bool}``. With ``inject_empty_pages`` every continuation page is preceded
by an empty page that still says ``hasNextPage: true`` (the documented "short or empty page while
more data remains"), so a client that stops on a short page is caught.

State lives in ``state_path`` (``samsara.json``); changes made through the admin routes are
written back to it, so they survive a restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safetyamp_pipeline.sandbox.server import Emulator, FaultConfig, SlidingWindowRateLimiter, build_app

MAX_PAGE_SIZE = 512
STATE_KEYS = ("vehicles", "drivers")


class SamsaraFixtureError(ValueError):
    """A samsara.json that cannot be loaded; the message names the file and the problem."""


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "requestId": _request_id()}, status_code=status, headers=headers)


def validate_document(document: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    """Check a ``{"vehicles": [...], "drivers": [...]}`` document; raise naming ``source``."""
    if not isinstance(document, dict):
        raise SamsaraFixtureError(
            f"{source}: the top level must be a JSON object with 'vehicles' and 'drivers'"
        )
    unknown = sorted(set(document) - set(STATE_KEYS))
    if unknown:
        raise SamsaraFixtureError(
            f"{source}: unknown key(s) {', '.join(unknown)}; expected 'vehicles' and 'drivers'"
        )
    result: dict[str, list[dict[str, Any]]] = {}
    for key in STATE_KEYS:
        records = document.get(key, [])
        if not isinstance(records, list):
            raise SamsaraFixtureError(f"{source}: '{key}' must be a list, got {type(records).__name__}")
        seen: set[str] = set()
        for index, record in enumerate(records):
            where = f"{source}: {key}[{index}]"
            if not isinstance(record, dict):
                raise SamsaraFixtureError(f"{where} must be an object, got {type(record).__name__}")
            record_id = record.get("id")
            if not isinstance(record_id, str) or not record_id:
                raise SamsaraFixtureError(f"{where}.id must be a non-empty string, got {record_id!r}")
            if record_id in seen:
                raise SamsaraFixtureError(f"{where}.id {record_id!r} is a duplicate")
            seen.add(record_id)
            external = record.get("externalIds")
            if external is not None and (
                not isinstance(external, dict) or not all(isinstance(v, str) for v in external.values())
            ):
                raise SamsaraFixtureError(f"{where}.externalIds must be an object of strings")
        result[key] = [dict(r) for r in records]
    return result


def load_state_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SamsaraFixtureError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SamsaraFixtureError(f"{path}: not valid JSON: {exc}") from exc
    return validate_document(document, str(path))


def write_json_atomically(path: Path, document: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def encode_cursor(offset: int, emptied: bool) -> str:
    raw = json.dumps({"o": offset, "e": int(emptied)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, bool]:
    """``(offset, already_served_empty)``; raises ValueError for a cursor this emulator never issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset, emptied = data["o"], data["e"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError("unknown cursor") from exc
    if not isinstance(offset, int) or offset < 0 or emptied not in (0, 1):
        raise ValueError("unknown cursor")
    return offset, bool(emptied)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


class SamsaraEmulator(Emulator):
    """Samsara ``/fleet`` emulator; ``.app`` is the ASGI app to serve."""

    def __init__(
        self,
        state_path: Path | str,
        token: str,
        fixture: Path | str | dict[str, Any] | None = None,
        rate_per_second: int | None = 25,
        faults: FaultConfig | None = None,
        *,
        inject_empty_pages: bool = False,
    ) -> None:
        limiter = (
            SlidingWindowRateLimiter(rate_per_second, 1.0, fractional_retry_after=True)
            if rate_per_second
            else None
        )
        super().__init__("samsara", rate_limiter=limiter, faults=faults)
        self.state_path = Path(state_path)
        self.token = token
        self.inject_empty_pages = inject_empty_pages
        self._lock = threading.Lock()
        self._vehicles: list[dict[str, Any]] = []
        self._drivers: list[dict[str, Any]] = []
        self._replace(self._initial_state(fixture), persist=not self.state_path.exists())
        self.app = build_app(self, self._api_routes() + self._admin_routes())

    # ------------------------------------------------------------------ state
    def _initial_state(self, fixture: Path | str | dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
        if self.state_path.exists():
            return load_state_file(self.state_path)
        if isinstance(fixture, dict):
            return validate_document(fixture, "fixture")
        if fixture is not None and Path(fixture).exists():
            return load_state_file(Path(fixture))
        return {key: [] for key in STATE_KEYS}

    def _replace(self, document: dict[str, list[dict[str, Any]]], *, persist: bool = True) -> None:
        with self._lock:
            self._vehicles = document["vehicles"]
            self._drivers = document["drivers"]
            if persist:
                self._save_locked()

    def _save_locked(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.state_path, {"vehicles": self._vehicles, "drivers": self._drivers})

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "vehicles": [dict(v) for v in self._vehicles],
                "drivers": [dict(d) for d in self._drivers],
            }

    def put_vehicle(self, vehicle: dict[str, Any]) -> None:
        checked = validate_document({"vehicles": [vehicle]}, "vehicle")["vehicles"][0]
        with self._lock:
            for index, existing in enumerate(self._vehicles):
                if existing["id"] == checked["id"]:
                    self._vehicles[index] = checked
                    break
            else:
                self._vehicles.append(checked)
            self._save_locked()

    def remove_vehicle(self, vehicle_id: str) -> bool:
        with self._lock:
            kept = [v for v in self._vehicles if v["id"] != vehicle_id]
            removed = len(kept) != len(self._vehicles)
            if removed:
                self._vehicles = kept
                self._save_locked()
            return removed

    # ------------------------------------------------------------------ harness hooks
    def authenticate(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return error_response(401, "Unauthorized: missing bearer token")
        if presented.strip() != self.token:
            return error_response(401, "Unauthorized: invalid API token")
        return None

    def too_many_requests_response(self) -> Response:
        return error_response(
            429, "Rate limit exceeded. Please retry after the time in the Retry-After header."
        )

    def fault_response(self, status: int) -> Response:
        return error_response(status, f"Internal server error (injected fault {status})")

    # ------------------------------------------------------------------ API
    def _api_routes(self) -> list[Route]:
        return [
            Route("/fleet/vehicles", self._list_vehicles, methods=["GET"]),
            Route("/fleet/drivers", self._list_drivers, methods=["GET"]),
            Route("/fleet/drivers/{id}", self._get_driver, methods=["GET"]),
        ]

    async def _list_vehicles(self, request: Request) -> Response:
        with self._lock:
            records = list(self._vehicles)
        return self._page(request, records)

    async def _list_drivers(self, request: Request) -> Response:
        status = request.query_params.get("driverActivationStatus", "active")
        if status not in ("active", "deactivated"):
            return error_response(400, "driverActivationStatus must be 'active' or 'deactivated'")
        with self._lock:
            records = [d for d in self._drivers if _driver_status(d) == status]
        return self._page(request, records)

    def _page(self, request: Request, records: list[dict[str, Any]]) -> Response:
        raw_limit = request.query_params.get("limit")
        limit = MAX_PAGE_SIZE
        if raw_limit not in (None, ""):
            try:
                limit = int(raw_limit)
            except ValueError:
                return error_response(400, f"Invalid value for parameter 'limit': {raw_limit!r}")
            if limit < 1:
                return error_response(400, "Parameter 'limit' must be at least 1")
            limit = min(limit, MAX_PAGE_SIZE)
        offset, emptied = 0, True
        after = request.query_params.get("after", "")
        if after:
            try:
                offset, emptied = decode_cursor(after)
            except ValueError:
                return error_response(400, "Invalid value for parameter 'after': unknown or expired cursor")
            if self.inject_empty_pages and not emptied and offset < len(records):
                return JSONResponse(
                    {
                        "data": [],
                        "pagination": {"endCursor": encode_cursor(offset, True), "hasNextPage": True},
                    }
                )
        page = records[offset : offset + limit]
        next_offset = offset + len(page)
        has_next = next_offset < len(records)
        return JSONResponse(
            {
                "data": [_public(r) for r in page],
                "pagination": {
                    "endCursor": encode_cursor(next_offset, False) if has_next else "",
                    "hasNextPage": has_next,
                },
            }
        )

    async def _get_driver(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        key, sep, value = wanted.partition(":")
        with self._lock:
            for driver in self._drivers:
                if driver["id"] == wanted or (sep and (driver.get("externalIds") or {}).get(key) == value):
                    return JSONResponse({"data": _public(driver)})
        return error_response(404, f"Driver {wanted} not found")

    # ------------------------------------------------------------------ admin
    def _admin_routes(self) -> list[Route]:
        return [
            Route("/__sandbox/state", self._replace_state, methods=["POST"]),
            Route("/__sandbox/vehicles", self._put_vehicle, methods=["POST"]),
            Route("/__sandbox/vehicles/{id}", self._delete_vehicle, methods=["DELETE"]),
            Route("/__sandbox/settings", self._settings, methods=["GET", "POST"]),
        ]

    async def _replace_state(self, request: Request) -> Response:
        try:
            document = validate_document(json.loads(await request.body() or b"null"), "state")
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        self._replace(document)
        return JSONResponse(self.state())

    async def _put_vehicle(self, request: Request) -> Response:
        try:
            self.put_vehicle(json.loads(await request.body() or b"null"))
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        return JSONResponse(self.state())

    async def _delete_vehicle(self, request: Request) -> Response:
        if not self.remove_vehicle(request.path_params["id"]):
            return JSONResponse({"message": f"no vehicle {request.path_params['id']}"}, status_code=404)
        return JSONResponse(self.state())

    async def _settings(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict) or set(body) - {"inject_empty_pages"}:
                    raise ValueError("settings must be an object with only 'inject_empty_pages'")
                if "inject_empty_pages" in body:
                    if not isinstance(body["inject_empty_pages"], bool):
                        raise ValueError("'inject_empty_pages' must be true or false")
                    self.inject_empty_pages = body["inject_empty_pages"]
            except ValueError as exc:
                return JSONResponse({"message": str(exc)}, status_code=400)
        return JSONResponse({"inject_empty_pages": self.inject_empty_pages})


def _driver_status(driver: dict[str, Any]) -> str:
    status = driver.get("driverActivationStatus")
    if status in ("active", "deactivated"):
        return status
    return "deactivated" if driver.get("isDeactivated") else "active"
