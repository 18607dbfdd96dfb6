"""Shared harness for the sandbox emulators (SafetyAmp, Samsara, Graph).

Every emulator is a Starlette app built by :func:`build_app` around an :class:`Emulator`
subclass. The harness wraps each request to an API route in this order::

    counting -> faults -> auth (emulator hook) -> rate limit -> route

* **counting** - every request whose path matches an API route is counted under its template
  (``"PATCH /api/users/{id}"``), whatever its answer (4xx, 429, injected faults). Requests to
  ``/__sandbox/*`` and to unknown paths are never counted.
* **faults** - :class:`FaultConfig`: latency, dropped connections (the socket is aborted before any
  byte is written, so the client sees a connection error), random 5xx, a burst of N 429s.
* **auth** - ``Emulator.authenticate(request)`` returns a rejection ``Response`` or ``None``.
* **rate limit** - ``Emulator.rate_limiter`` (a :class:`SlidingWindowRateLimiter` or ``None``),
  keyed by ``Emulator.rate_limit_key(request)``; answers 429 with the emulator's own body
  (``Emulator.too_many_requests_response``) and ``Retry-After``; ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining`` are added to every API answer that reached the limiter.

Admin routes on the same origin: ``GET /__sandbox/requests``, ``POST /__sandbox/requests/reset``,
``GET /__sandbox/state`` (``Emulator.state()``), ``GET/POST /__sandbox/faults``.

Example::

    class Echo(Emulator):
        def state(self) -> dict:
            return {"things": []}

    async def list_things(request):
        return JSONResponse({"data": []})

    emulator = Echo("echo", rate_limiter=SlidingWindowRateLimiter(limit=5, window=1.0))
    server = ServerThread(build_app(emulator, [Route("/api/things", list_things)])).start()
    requests.get(server.url + "/api/things")          # counted as "GET /api/things"
    requests.get(server.url + "/__sandbox/requests").json()  # {"total": 1, "by_route": {...}}
    server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import random
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/__sandbox/"
TRANSPORT_SCOPE_KEY = "sandbox.transport"


# --------------------------------------------------------------------------------------------
# Fault injection


@dataclass
class FaultConfig:
    """Faults applied to API requests (never to ``/__sandbox/*``)."""

    error_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: int = 0
    burst_429: int = 0
    seed: int | None = None
    error_statuses: tuple[int, ...] = (500, 502, 503)

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"FaultConfig.{name} must be a number between 0 and 1, got {value!r}")
        for name in ("latency_ms", "burst_429"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"FaultConfig.{name} must be a non-negative integer, got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError(f"FaultConfig.seed must be an integer or null, got {self.seed!r}")
        statuses = tuple(self.error_statuses)
        if not statuses or not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            raise ValueError(
                f"FaultConfig.error_statuses must be HTTP status codes, got {self.error_statuses!r}"
            )
        self.error_statuses = statuses

    @classmethod
    def from_json(cls, data: Any) -> FaultConfig:
        """Build from a JSON object; missing keys take their defaults, unknown keys are an error."""
        if not isinstance(data, dict):
            raise ValueError("fault config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["error_statuses"] = list(self.error_statuses)
        return data


@dataclass(frozen=True)
class _FaultDecision:
    latency_s: float = 0.0
    drop: bool = False
    burst_429: bool = False
    error_status: int | None = None


class ConnectionDropped(Exception):
    """Raised when a drop is injected but the server gave no transport to abort (e.g. TestClient)."""


# --------------------------------------------------------------------------------------------
# Rate limiting


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until a slot frees up; 0 when allowed


class SlidingWindowRateLimiter:
    """At most ``limit`` requests per ``window`` seconds per key (sliding window log).

    Rejected requests do not consume a slot. ``fractional_retry_after`` renders ``Retry-After`` as
    a float (Samsara); otherwise it is rounded up to whole seconds (Laravel/SafetyAmp, Graph).
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        fractional_retry_after: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = float(window)
        self.fractional_retry_after = fractional_retry_after
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> RateLimitDecision:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            horizon = now - self.window
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) < self.limit:
                hits.append(now)
                return RateLimitDecision(True, self.limit, self.limit - len(hits), 0.0)
            retry_after = max(hits[0] + self.window - now, 0.001)
            return RateLimitDecision(False, self.limit, 0, retry_after)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()

    def format_retry_after(self, seconds: float) -> str:
        if self.fractional_retry_after:
            return f"{seconds:.3f}"
        return str(max(1, math.ceil(seconds)))

    def headers(self, decision: RateLimitDecision) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if not decision.allowed:
            headers["Retry-After"] = self.format_retry_after(decision.retry_after)
            headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + decision.retry_after))
        return headers


# --------------------------------------------------------------------------------------------
# Emulator base


class Emulator:
    """Base for every emulator: request counter, fault config and the hooks the harness calls.

    Subclasses override :meth:`state` and, as needed, :meth:`authenticate`,
    :meth:`rate_limit_key`, :meth:`too_many_requests_response`, :meth:`fault_response`,
    :meth:`flush` (persist before ``/__sandbox/state``) and :meth:`shutdown` (server stopping).
    """

    def __init__(
        self,
        name: str,
        *,
        rate_limiter: SlidingWindowRateLimiter | None = None,
        faults: FaultConfig | None = None,
    ) -> None:
        self.name = name
        self.rate_limiter = rate_limiter
        self._counter_lock = threading.Lock()
        self._total = 0
        self._by_route: dict[str, int] = {}
        self._fault_lock = threading.Lock()
        self._faults = FaultConfig()
        self._random = random.Random()
        self.set_faults(faults or FaultConfig())

    # ---- request counting
    def count_request(self, route_key: str) -> None:
        with self._counter_lock:
            self._total += 1
            self._by_route[route_key] = self._by_route.get(route_key, 0) + 1

    def request_counts(self) -> dict[str, Any]:
        with self._counter_lock:
            return {"total": self._total, "by_route": dict(self._by_route)}

    def reset_request_counts(self) -> None:
        with self._counter_lock:
            self._total = 0
            self._by_route = {}

    # ---- faults
    @property
    def faults(self) -> FaultConfig:
        with self._fault_lock:
            return dataclasses.replace(self._faults)

    def set_faults(self, config: FaultConfig) -> None:
        with self._fault_lock:
            self._faults = dataclasses.replace(config)
            self._random = random.Random(config.seed)

    def _decide_faults(self) -> _FaultDecision:
        with self._fault_lock:
            cfg = self._faults
            latency = cfg.latency_ms / 1000.0
            if cfg.drop_rate and self._random.random() < cfg.drop_rate:
                return _FaultDecision(latency_s=latency, drop=True)
            if cfg.burst_429 > 0:
                cfg.burst_429 -= 1
                return _FaultDecision(latency_s=latency, burst_429=True)
            if cfg.error_rate and self._random.random() < cfg.error_rate:
                return _FaultDecision(latency_s=latency, error_status=self._random.choice(cfg.error_statuses))
            return _FaultDecision(latency_s=latency)

    # ---- hooks
    def authenticate(self, request: Request) -> Response | None:
        """Return a rejection response, or ``None`` to let the request through."""
        return None

    def rate_limit_key(self, request: Request) -> str:
        """Key of the rate-limit bucket: the bearer token, else the client address."""
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return "token:" + auth[7:].strip()
        client = request.client
        return "ip:" + (client.host if client else "unknown")

    def too_many_requests_response(self) -> Response:
        return JSONResponse({"message": "Too Many Requests"}, status_code=429)

    def fault_response(self, status: int) -> Response:
        return JSONResponse({"message": f"Injected fault ({status})"}, status_code=status)

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def flush(self) -> None:
        """Persist pending state (called before ``GET /__sandbox/state``)."""

    def shutdown(self) -> None:
        """Called once when the server shuts down."""


# --------------------------------------------------------------------------------------------
# Middleware and app


def _route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "path", None)
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "path", None)
    return partial


class _HarnessMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator, api_routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.emulator = emulator
        self.api_routes = list(api_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        template = _route_template(self.api_routes, scope)
        if template is None:
            await self.app(scope, receive, send)
            return
        emulator = self.emulator
        emulator.count_request(f"{scope['method']} {template}")

        decision = emulator._decide_faults()
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.drop:
            await _drop_connection(scope)
            return
        if decision.burst_429:
            response = emulator.too_many_requests_response()
            response.headers["Retry-After"] = "1"
            await response(scope, receive, send)
            return
        if decision.error_status is not None:
            await emulator.fault_response(decision.error_status)(scope, receive, send)
            return

        request = Request(scope)
        rejection = emulator.authenticate(request)
        if rejection is not None:
            await rejection(scope, receive, send)
            return

        limiter = emulator.rate_limiter
        if limiter is None:
            await self.app(scope, receive, send)
            return
        verdict = limiter.check(emulator.rate_limit_key(request))
        extra = limiter.headers(verdict)
        if not verdict.allowed:
            response = emulator.too_many_requests_response()
            response.headers.update(extra)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in extra.items():
                    headers[key] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _drop_connection(scope: Scope) -> None:
    transport = scope.get("extensions", {}).get(TRANSPORT_SCOPE_KEY)
    if transport is None:
        raise ConnectionDropped("connection drop injected")
    transport.abort()
    # Let uvicorn notice the lost connection so it neither logs nor answers the dead request.
    for _ in range(3):
        await asyncio.sleep(0)


def _admin_routes(emulator: Emulator) -> list[Route]:
    async def get_requests(request: Request) -> Response:
        return JSONResponse(emulator.request_counts())

    async def reset_requests(request: Request) -> Response:
        emulator.reset_request_counts()
        return JSONResponse(emulator.request_counts())

    async def get_state(request: Request) -> Response:
        emulator.flush()
        return JSONResponse(emulator.state())

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                emulator.set_faults(FaultConfig.from_json(body))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"message": f"invalid fault config: {exc}"}, status_code=400)
        return JSONResponse(emulator.faults.to_json())

    return [
        Route(ADMIN_PREFIX + "requests", get_requests, methods=["GET"]),
        Route(ADMIN_PREFIX + "requests/reset", reset_requests, methods=["POST"]),
        Route(ADMIN_PREFIX + "state", get_state, methods=["GET"]),
        Route(ADMIN_PREFIX + "faults", faults, methods=["GET", "POST"]),
    ]


def build_app(
    emulator: Emulator,
    routes: Iterable[BaseRoute],
    *,
    exception_handlers: dict[Any, Callable[..., Any]] | None = None,
) -> Starlette:
    """Starlette app serving ``routes`` behind the harness plus the ``/__sandbox/*`` admin routes."""
    from starlette.middleware import Middleware

    api_routes = list(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        emulator.shutdown()

    app = Starlette(
        routes=_admin_routes(emulator) + api_routes,
        middleware=[Middleware(_HarnessMiddleware, emulator=emulator, api_routes=api_routes)],
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app


# --------------------------------------------------------------------------------------------
# Server in a thread


def _protocol_with_transport() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, extended to expose the transport in the scope (for drops)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class TransportExposingProtocol(Base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            inner = self.app

            async def app_with_transport(scope: Scope, receive: Receive, send: Send) -> None:
                scope.setdefault("extensions", {})[TRANSPORT_SCOPE_KEY] = transport
                await inner(scope, receive, send)

            self.app = app_with_transport
            self._sandbox_transport = transport

        def shutdown(self) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            super().shutdown()
            if idle:
                # A TLS close waits for the peer's close_notify, which an idle pooled client
                # never sends; abort so that stop() does not hang for the graceful timeout.
                self._sandbox_transport.abort()

    return TransportExposingProtocol


class ServerThread:
    """Runs an ASGI app with uvicorn in a daemon thread.

    ``start()`` returns once the socket accepts connections; ``port`` and ``url`` are then set.
    ``stop()`` shuts the server down (running the app's lifespan shutdown) and frees the port.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self._socket = sock
        port: int = sock.getsockname()[1]
        self.port = port
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=port,
            http=_protocol_with_transport(),
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                assert self._server is not None
                self._server.run(sockets=[sock])
            except BaseException as exc:  # surfaced by start()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._close_socket()
                raise RuntimeError(f"server on port {self.port} failed to start") from self._error
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._close_socket()
        self._server = None
        self._thread = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "ConnectionDropped",
    "Emulator",
    "FaultConfig",
    "RateLimitDecision",
    "ServerThread",
    "SlidingWindowRateLimiter",
    "build_app",
]
