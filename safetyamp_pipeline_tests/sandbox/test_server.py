"""The shared emulator harness, exercised over real HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
import trustme
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safetyamp_pipeline.sandbox.server import (
    Emulator,
    FaultConfig,
    ServerThread,
    SlidingWindowRateLimiter,
    build_app,
)

TOKEN = "harness-token"
TIMEOUT = 10


def _get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, **{"timeout": TIMEOUT, **kwargs})  # type: ignore[arg-type]


def _post(url: str, **kwargs: object) -> requests.Response:
    return requests.post(url, **{"timeout": TIMEOUT, **kwargs})  # type: ignore[arg-type]


def _patch(url: str, **kwargs: object) -> requests.Response:
    return requests.patch(url, **{"timeout": TIMEOUT, **kwargs})  # type: ignore[arg-type]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ToyEmulator(Emulator):
    """Minimal emulator: one collection, one item route, token auth, a custom 429 body."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("toy", **kwargs)  # type: ignore[arg-type]
        self.things: list[dict[str, int]] = []
        self.shutdown_calls = 0

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"message": "nope"}, status_code=401)
        return None

    def too_many_requests_response(self) -> Response:
        return JSONResponse({"message": "slow down", "requestId": "r-1"}, status_code=429)

    def state(self) -> dict[str, object]:
        return {"things": list(self.things)}

    def shutdown(self) -> None:
        self.shutdown_calls += 1


def make_app(emulator: ToyEmulator):
    async def things(request: Request) -> Response:
        if request.method == "POST":
            emulator.things.append({"id": len(emulator.things) + 1})
            return JSONResponse({"data": emulator.things[-1]}, status_code=201)
        return JSONResponse({"data": emulator.things})

    async def thing(request: Request) -> Response:
        return JSONResponse({"data": {"id": int(request.path_params["id"])}})

    return build_app(
        emulator,
        [
            Route("/api/things", things, methods=["GET", "POST"]),
            Route("/api/things/{id}", thing, methods=["PATCH"]),
        ],
    )


@pytest.fixture
def toy() -> Iterator[tuple[ToyEmulator, str]]:
    emulator = ToyEmulator()
    server = ServerThread(make_app(emulator)).start()
    try:
        yield emulator, server.url
    finally:
        server.stop()


def test_requests_are_counted_by_route_template_whatever_the_answer(toy):
    emulator, url = toy
    _get(url + "/api/things", headers=AUTH)
    _post(url + "/api/things", headers=AUTH)
    _patch(url + "/api/things/7", headers=AUTH)
    _patch(url + "/api/things/8")  # 401
    assert _get(url + "/api/things/9", headers=AUTH).status_code == 405
    _get(url + "/__sandbox/state")
    _get(url + "/not/an/api/route", headers=AUTH)

    counts = _get(url + "/__sandbox/requests").json()
    assert counts == {
        "total": 5,
        "by_route": {
            "GET /api/things": 1,
            "POST /api/things": 1,
            "PATCH /api/things/{id}": 2,
            "GET /api/things/{id}": 1,
        },
    }

    reset = _post(url + "/__sandbox/requests/reset").json()
    assert reset == {"total": 0, "by_route": {}}
    assert emulator.request_counts() == {"total": 0, "by_route": {}}


def test_state_route_returns_the_emulator_state(toy):
    _, url = toy
    _post(url + "/api/things", headers=AUTH)
    assert _get(url + "/__sandbox/state").json() == {"things": [{"id": 1}]}


def test_error_rate_one_answers_only_configured_5xx_and_is_still_counted(toy):
    emulator, url = toy
    set_faults = _post(url + "/__sandbox/faults", json={"error_rate": 1.0, "seed": 3})
    assert set_faults.json()["error_rate"] == 1.0
    statuses = {_get(url + "/api/things", headers=AUTH).status_code for _ in range(12)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    assert emulator.request_counts()["by_route"] == {"GET /api/things": 12}
    # admin routes are never faulted
    assert _get(url + "/__sandbox/requests").status_code == 200


def test_faults_come_before_auth(toy):
    _, url = toy
    _post(url + "/__sandbox/faults", json={"error_rate": 1.0, "error_statuses": [503]})
    assert _get(url + "/api/things").status_code == 503  # no token, still a 503


def test_drop_rate_one_drops_the_connection_without_an_answer(toy):
    emulator, url = toy
    emulator.set_faults(FaultConfig(drop_rate=1.0))
    with pytest.raises(requests.ConnectionError):
        _get(url + "/api/things", headers=AUTH, timeout=5)
    emulator.set_faults(FaultConfig())
    assert _get(url + "/api/things", headers=AUTH, timeout=5).status_code == 200
    assert emulator.request_counts()["by_route"]["GET /api/things"] == 2


def test_burst_429_answers_exactly_n_429s_with_the_emulator_body(toy):
    _, url = toy
    _post(url + "/__sandbox/faults", json={"burst_429": 3})
    answers = [_get(url + "/api/things", headers=AUTH) for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 429, 429, 200, 200]
    assert answers[0].json() == {"message": "slow down", "requestId": "r-1"}
    assert answers[0].headers["Retry-After"] == "1"
    assert _get(url + "/__sandbox/faults").json()["burst_429"] == 0


def test_latency_delays_api_answers(toy):
    emulator, url = toy
    emulator.set_faults(FaultConfig(latency_ms=300))
    started = time.monotonic()
    _get(url + "/api/things", headers=AUTH)
    assert time.monotonic() - started >= 0.3


def test_invalid_fault_config_is_rejected_and_the_old_one_kept(toy):
    _, url = toy
    _post(url + "/__sandbox/faults", json={"latency_ms": 5})
    bad_key = _post(url + "/__sandbox/faults", json={"error_rat": 1})
    bad_value = _post(url + "/__sandbox/faults", json={"drop_rate": 2})
    assert bad_key.status_code == 400 and "error_rat" in bad_key.json()["message"]
    assert bad_value.status_code == 400 and "drop_rate" in bad_value.json()["message"]
    assert _get(url + "/__sandbox/faults").json()["latency_ms"] == 5


def test_rate_limit_per_token_with_headers_and_recovery():
    emulator = ToyEmulator(rate_limiter=SlidingWindowRateLimiter(limit=3, window=0.6))
    with ServerThread(make_app(emulator)) as server:
        answers = [_get(server.url + "/api/things", headers=AUTH) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
        assert answers[3].headers["Retry-After"] == "1"
        assert answers[3].json() == {"message": "slow down", "requestId": "r-1"}
        # 401s are answered before the limiter and consume nothing
        assert _get(server.url + "/api/things").status_code == 401
        time.sleep(0.65)
        assert _get(server.url + "/api/things", headers=AUTH).status_code == 200
        assert emulator.request_counts()["by_route"]["GET /api/things"] == 6


def test_limiter_retry_after_formats_and_window_sliding():
    now = [100.0]
    limiter = SlidingWindowRateLimiter(2, 1.0, fractional_retry_after=True, clock=lambda: now[0])
    assert limiter.check("a").allowed and limiter.check("a").allowed
    denied = limiter.check("a")
    assert not denied.allowed
    assert limiter.headers(denied)["Retry-After"] == "1.000"
    assert limiter.check("b").allowed  # other key, own budget
    now[0] += 0.4
    assert limiter.format_retry_after(limiter.check("a").retry_after) == "0.600"
    now[0] += 0.61
    assert limiter.check("a").allowed
    whole = SlidingWindowRateLimiter(1, 60.0)
    assert whole.format_retry_after(0.2) == "1" and whole.format_retry_after(59.01) == "60"


def test_server_thread_picks_a_free_port_and_frees_it_on_stop():
    emulator = ToyEmulator()
    server = ServerThread(make_app(emulator)).start()
    port = server.port
    assert port and server.url == f"http://127.0.0.1:{port}"
    assert _get(server.url + "/api/things", headers=AUTH).status_code == 200
    server.stop()
    assert emulator.shutdown_calls == 1
    with pytest.raises(requests.ConnectionError):
        _get(f"http://127.0.0.1:{port}/api/things", headers=AUTH, timeout=2)
    again = ServerThread(make_app(ToyEmulator()), port=port).start()
    try:
        assert _get(again.url + "/api/things", headers=AUTH).status_code == 200
    finally:
        again.stop()


def test_server_thread_fails_clearly_on_a_taken_port():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(OSError):
            ServerThread(make_app(ToyEmulator()), port=holder.getsockname()[1]).start()
    finally:
        holder.close()


def test_server_thread_serves_https(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path, ca_path = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    server = ServerThread(
        make_app(ToyEmulator()), ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
    ).start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        answer = _get(server.url + "/api/things", headers=AUTH, verify=str(ca_path))
        assert answer.status_code == 200
    finally:
        server.stop()
