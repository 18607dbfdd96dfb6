"""GraphClient against the Graph/login emulator over HTTPS (MSAL does the real token flow)."""

from __future__ import annotations

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

from safetyamp_pipeline.clients.errors import MalformedResponse, RetriesExhausted, TokenError, Unauthorized
from safetyamp_pipeline.clients.graph import GraphClient
from safetyamp_pipeline.sandbox.certs import SandboxCerts, ensure_certs
from safetyamp_pipeline.sandbox.graph_emulator import GraphEmulator
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TENANT = "11111111-2222-4333-8444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
SECRET = "graph-test-secret-Q9~v"
TOKEN_ROUTE = "POST /{tenant}/oauth2/v2.0/token"
USERS_ROUTE = "GET /v1.0/users"


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def directory_users(count: int) -> dict[str, Any]:
    return {
        "users": [
            {
                "id": f"00000000-0000-4000-8000-{n:012d}",
                "employeeId": str(1000 + n),
                "mail": f"user{n}@contoso.test",
                "userPrincipalName": f"user{n}@contoso.test",
                "accountEnabled": n % 7 != 0,
                "displayName": f"User {n}",
            }
            for n in range(count)
        ]
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> SandboxCerts:
    return ensure_certs(tmp_path_factory.mktemp("certs"))


@contextmanager
def emulator(
    tmp_path: Path, certs: SandboxCerts, *, users: int = 5, faults: FaultConfig | None = None,
    token_lifetime: int = 3600,
) -> Iterator[str]:
    app = GraphEmulator(
        tmp_path / "graph.json", TENANT, CLIENT_ID, SECRET,
        fixture=directory_users(users), token_lifetime=token_lifetime, faults=faults,
    )
    server = ServerThread(app.app, ssl_certfile=str(certs.cert_path), ssl_keyfile=str(certs.key_path)).start()
    try:
        yield server.url
    finally:
        server.stop()


def counts(url: str, certs: SandboxCerts) -> dict[str, Any]:
    return requests.get(url + "/__sandbox/requests", timeout=5, verify=str(certs.ca_path)).json()


def graph(url: str, certs: SandboxCerts, secret: str = SECRET, **kwargs: Any) -> GraphClient:
    return GraphClient(
        TENANT, CLIENT_ID, secret, authority_host=url, graph_url=url, ca_bundle=str(certs.ca_path), **kwargs
    )


def test_msal_gets_a_token_over_https_and_paging_follows_next_link(tmp_path: Path, certs: SandboxCerts) -> None:
    with emulator(tmp_path, certs, users=2100) as url:
        client = graph(url, certs)
        users = client.list_users()
        seen = counts(url, certs)
    assert len(users) == 2100
    assert {u["id"] for u in users} == {f"00000000-0000-4000-8000-{n:012d}" for n in range(2100)}
    # $select asked for exactly these fields; employeeId/accountEnabled only come when selected.
    assert set(users[0]) == {"id", "employeeId", "mail", "userPrincipalName", "accountEnabled"}
    assert users[7]["accountEnabled"] is False
    # 999 + 999 + 102, one token for the whole listing (MSAL's cache serves the later pages).
    assert seen["by_route"][USERS_ROUTE] == 3
    assert seen["by_route"][TOKEN_ROUTE] == 1


def test_the_token_is_reused_across_listings_and_renewed_when_near_expiry(tmp_path: Path, certs: SandboxCerts) -> None:
    with emulator(tmp_path, certs, users=3) as url:
        client = graph(url, certs)
        client.list_users()
        client.list_users()
        assert counts(url, certs)["by_route"][TOKEN_ROUTE] == 1
    # A token that lives less than MSAL's 5-minute refresh margin is renewed for every page.
    with emulator(tmp_path / "short", certs, users=2100, token_lifetime=120) as url:
        client = graph(url, certs)
        client.list_users()
        assert counts(url, certs)["by_route"][TOKEN_ROUTE] == 3


def test_a_wrong_secret_is_a_token_error_naming_the_client_and_tenant_not_the_secret(
    tmp_path: Path, certs: SandboxCerts
) -> None:
    with emulator(tmp_path, certs) as url:
        client = graph(url, certs, secret="wrong-secret-Zz81")
        with pytest.raises(TokenError) as caught:
            client.list_users()
        seen = counts(url, certs)
    text = str(caught.value)
    assert CLIENT_ID in text and TENANT in text
    assert "invalid_client" in text
    assert "wrong-secret-Zz81" not in text and SECRET not in text
    assert USERS_ROUTE not in seen["by_route"]  # no Graph call without a token


def test_an_unknown_tenant_is_a_token_error(tmp_path: Path, certs: SandboxCerts) -> None:
    with emulator(tmp_path, certs) as url:
        client = GraphClient(
            "99999999-0000-4000-8000-000000000000", CLIENT_ID, SECRET,
            authority_host=url, graph_url=url, ca_bundle=str(certs.ca_path),
        )
        with pytest.raises(TokenError, match="99999999-0000-4000-8000-000000000000"):
            client.list_users()


def test_without_the_sandbox_ca_the_connection_is_refused_rather_than_trusted(
    tmp_path: Path, certs: SandboxCerts
) -> None:
    with emulator(tmp_path, certs) as url:
        client = GraphClient(TENANT, CLIENT_ID, SECRET, authority_host=url, graph_url=url)
        with pytest.raises(TokenError, match="SSL"):
            client.list_users()


def test_a_429_is_waited_out_for_its_retry_after(tmp_path: Path, certs: SandboxCerts) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, certs, users=1500) as url:
        client = graph(url, certs, sleep=sleep)
        client.access_token()  # the token first: the injected 429s must hit Graph, not the login
        requests.post(url + "/__sandbox/faults", json={"burst_429": 2}, timeout=5, verify=str(certs.ca_path))
        users = client.list_users()
        seen = counts(url, certs)
    assert len(users) == 1500
    assert sleep.waits == [1.0, 1.0]
    assert client.stats.rate_limited_responses == 2
    assert seen["by_route"][USERS_ROUTE] == 4


def test_server_errors_are_retried_then_fail_the_listing(tmp_path: Path, certs: SandboxCerts) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, certs, users=1500) as url:
        client = graph(url, certs, sleep=sleep, max_retries=2)
        client.access_token()
        requests.post(
            url + "/__sandbox/faults", json={"error_rate": 1.0, "error_statuses": [503]},
            timeout=5, verify=str(certs.ca_path),
        )
        with pytest.raises(RetriesExhausted) as caught:
            client.list_users()
        seen = counts(url, certs)
    assert caught.value.status == 503
    assert "Graph GET /v1.0/users" in str(caught.value)
    assert seen["by_route"][USERS_ROUTE] == 3
    assert len(sleep.waits) == 2


def test_a_failed_second_page_fails_the_listing(tmp_path: Path, certs: SandboxCerts) -> None:
    answered: list[str] = []
    with emulator(tmp_path, certs, users=1500) as url:
        client = graph(url, certs, sleep=RecordingSleep(), max_retries=1)

        def break_after_first_page(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if "/v1.0/users" in response.url:
                answered.append(response.url)
                if len(answered) == 1:
                    requests.post(url + "/__sandbox/faults", json={"error_rate": 1.0}, timeout=5,
                                  verify=str(certs.ca_path))

        client.session.hooks["response"].append(break_after_first_page)
        with pytest.raises(RetriesExhausted):
            client.list_users()
    assert len(answered) == 3
    assert "%24skiptoken" in answered[1] or "$skiptoken" in answered[1]  # the nextLink, verbatim


def test_an_expired_or_foreign_token_is_unauthorized(tmp_path: Path, certs: SandboxCerts) -> None:
    with emulator(tmp_path, certs) as url:
        client = graph(url, certs)
        client.access_token = lambda: "sandbox.forged.token"  # type: ignore[method-assign]
        with pytest.raises(Unauthorized) as caught:
            client.list_users()
    assert caught.value.status == 401


def test_a_next_link_to_another_host_is_refused() -> None:
    # The bearer token must never be sent to a host other than the Graph API's.
    async def users(request: Request) -> Response:
        return JSONResponse(
            {"value": [{"id": "u1"}], "@odata.nextLink": "https://elsewhere.test/v1.0/users?$skiptoken=x"}
        )

    with ServerThread(Starlette(routes=[Route("/v1.0/users", users)])) as server:
        client = GraphClient(TENANT, CLIENT_ID, SECRET, authority_host="https://login.test", graph_url=server.url)
        client.access_token = lambda: "token-for-graph-only"  # type: ignore[method-assign]
        with pytest.raises(MalformedResponse, match="nextLink"):
            client.list_users()
    assert client.stats.total_requests == 1


def test_a_page_without_value_is_malformed() -> None:
    async def users(request: Request) -> Response:
        return JSONResponse({"error": "gateway returned something else"})

    with ServerThread(Starlette(routes=[Route("/v1.0/users", users)])) as server:
        client = GraphClient(TENANT, CLIENT_ID, SECRET, authority_host="https://login.test", graph_url=server.url)
        client.access_token = lambda: "token-for-graph-only"  # type: ignore[method-assign]
        with pytest.raises(MalformedResponse, match="GET /v1.0/users"):
            client.list_users()
