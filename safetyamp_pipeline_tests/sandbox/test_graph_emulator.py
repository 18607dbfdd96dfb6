"""The Graph/login emulator over real HTTPS, driven by real MSAL and the product's GraphClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msal
import pytest
import requests

from safetyamp_pipeline.clients.graph import GraphClient
from safetyamp_pipeline.sandbox.certs import ensure_certs
from safetyamp_pipeline.sandbox.graph_emulator import GraphEmulator, GraphFixtureError
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TENANT, CLIENT, SECRET = "sandbox-tenant", "sandbox-client", "sandbox-graph-secret"
SCOPE = ["https://graph.microsoft.com/.default"]


@pytest.fixture(autouse=True)
def _no_global_ca_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's `verify`, which is
    # how MSAL applies `verify=`; these tests pin the sandbox CA, so the ambient bundle must go.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def make_users(count: int) -> list[dict]:
    return [
        {
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "employeeId": str(10000 + n),
            "mail": f"person{n}@example.com",
            "userPrincipalName": f"person{n}@example.onmicrosoft.com",
            "accountEnabled": n % 4 != 0,
            "displayName": f"Person {n}",
        }
        for n in range(count)
    ]


class Running:
    def __init__(self, emulator: GraphEmulator, certs_dir: Path) -> None:
        self.emulator = emulator
        self.certs = ensure_certs(certs_dir)
        self.server = ServerThread(
            emulator.app, ssl_certfile=str(self.certs.cert_path), ssl_keyfile=str(self.certs.key_path)
        ).start()
        self.url = self.server.url
        self.ca = str(self.certs.ca_path)
        self.closables: list = []

    def msal_app(self, secret: str = SECRET, client_id: str = CLIENT, tenant: str = TENANT):
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=f"{self.url}/{tenant}",
            instance_discovery=False,
            verify=self.ca,
        )
        self.closables.append(app.http_client)
        return app

    def token(self) -> str:
        result = self.msal_app().acquire_token_for_client(scopes=SCOPE)
        return result["access_token"]

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.verify = self.ca
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        self.closables.append(session)
        return session

    def stop(self) -> None:
        for item in self.closables:  # idle TLS keep-alives would hold up the server's shutdown
            item.close()
        self.server.stop()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    running: list[Running] = []

    def _start(users: list[dict] | None = None, **kwargs: object) -> Running:
        fixture = {"users": users if users is not None else make_users(10)}
        emulator = GraphEmulator(
            tmp_path / f"graph{len(running)}.json", TENANT, CLIENT, SECRET, fixture=fixture, **kwargs
        )
        running.append(Running(emulator, tmp_path))
        return running[-1]

    yield _start
    for item in running:
        item.stop()


def test_msal_client_credentials_flow_gets_a_token_over_verified_https(start) -> None:
    run = start()
    result = run.msal_app().acquire_token_for_client(scopes=SCOPE)
    assert result["token_type"] == "Bearer" and result["expires_in"] == 3600
    assert result["access_token"]
    counts = run.session().get(run.url + "/__sandbox/requests").json()["by_route"]
    assert counts["GET /{tenant}/v2.0/.well-known/openid-configuration"] == 1
    assert counts["POST /{tenant}/oauth2/v2.0/token"] == 1


def test_https_is_really_verified_an_untrusted_ca_is_refused(start) -> None:
    run = start()
    with pytest.raises(requests.exceptions.SSLError):
        msal.ConfidentialClientApplication(
            CLIENT, client_credential=SECRET, authority=f"{run.url}/{TENANT}", instance_discovery=False
        )


def test_wrong_secret_or_client_is_refused_aad_style(start) -> None:
    run = start()
    wrong_secret = run.msal_app(secret="not-the-secret").acquire_token_for_client(scopes=SCOPE)
    assert "access_token" not in wrong_secret
    assert wrong_secret["error"] == "invalid_client" and wrong_secret["error_codes"] == [7000215]
    assert wrong_secret["error_description"].startswith("AADSTS7000215")
    assert "not-the-secret" not in json.dumps(wrong_secret)

    wrong_client = run.msal_app(client_id="someone-else").acquire_token_for_client(scopes=SCOPE)
    assert wrong_client["error"] == "unauthorized_client"

    raw = run.session().post(
        run.url + f"/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT,
            "client_secret": "x",
            "scope": SCOPE[0],
        },
    )
    assert raw.status_code == 401 and raw.json()["error"] == "invalid_client"
    bad_scope = run.session().post(
        run.url + f"/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT,
            "client_secret": SECRET,
            "scope": "User.Read",
        },
    )
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"


def test_unknown_tenant_fails_discovery(start) -> None:
    run = start()
    with pytest.raises(ValueError, match="tenant name or GUID"):
        run.msal_app(tenant="other-tenant")
    raw = run.session().get(run.url + "/other-tenant/v2.0/.well-known/openid-configuration")
    assert raw.status_code == 400 and raw.json()["error"] == "invalid_tenant"


def test_select_returns_only_selected_fields_plus_id(start) -> None:
    users = make_users(3)
    run = start(users)
    session = run.session(run.token())
    selected = session.get(
        run.url + "/v1.0/users", params={"$select": "mail,employeeId,accountEnabled"}
    ).json()
    assert selected["value"][1] == {
        "id": users[1]["id"],
        "mail": users[1]["mail"],
        "employeeId": users[1]["employeeId"],
        "accountEnabled": True,
    }
    default = session.get(run.url + "/v1.0/users").json()["value"][0]
    assert "employeeId" not in default and "accountEnabled" not in default
    assert (
        default["displayName"] == "Person 0" and default["userPrincipalName"] == users[0]["userPrincipalName"]
    )
    assert default["jobTitle"] is None and default["businessPhones"] == []
    unknown = session.get(run.url + "/v1.0/users", params={"$select": "id,shoeSize"})
    assert unknown.status_code == 400 and "shoeSize" in unknown.json()["error"]["message"]


def test_filter_account_enabled(start) -> None:
    users = make_users(12)
    run = start(users)
    session = run.session(run.token())
    enabled = session.get(
        run.url + "/v1.0/users", params={"$filter": "accountEnabled eq true", "$select": "id,accountEnabled"}
    ).json()["value"]
    assert [u["id"] for u in enabled] == [u["id"] for u in users if u["accountEnabled"]]
    disabled = session.get(run.url + "/v1.0/users", params={"$filter": "accountEnabled eq false"}).json()[
        "value"
    ]
    assert len(disabled) == 3
    one = session.get(
        run.url + "/v1.0/users", params={"$filter": "employeeId eq '10005' and accountEnabled eq true"}
    ).json()["value"]
    assert [u["id"] for u in one] == [users[5]["id"]]
    advanced = session.get(run.url + "/v1.0/users", params={"$filter": "accountEnabled ne true"})
    assert advanced.status_code == 400 and advanced.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_top_default_and_bounds(start) -> None:
    run = start(make_users(150))
    session = run.session(run.token())
    assert len(session.get(run.url + "/v1.0/users").json()["value"]) == 100
    assert len(session.get(run.url + "/v1.0/users", params={"$top": 999}).json()["value"]) == 150
    too_big = session.get(run.url + "/v1.0/users", params={"$top": 1000})
    assert too_big.status_code == 400
    assert "Must be between 1 and 999 inclusive" in too_big.json()["error"]["message"]


def test_next_link_paging_is_absolute_and_carries_every_parameter(start) -> None:
    users = make_users(23)
    run = start(users)
    session = run.session(run.token())
    url: str | None = run.url + "/v1.0/users?$select=id,employeeId&$filter=accountEnabled eq true&$top=5"
    seen: list[str] = []
    pages = 0
    while url:
        body = session.get(url).json()
        pages += 1
        seen.extend(u["id"] for u in body["value"])
        assert all(set(u) == {"id", "employeeId"} for u in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == run.url
            query = parse_qs(parts.query)
            assert query["$top"] == ["5"] and query["$select"] == ["id,employeeId"] and "$skiptoken" in query
    expected = [u["id"] for u in users if u["accountEnabled"]]
    assert seen == expected and pages == 4
    assert session.get(run.url + "/v1.0/users", params={"$skiptoken": "bogus!"}).status_code == 400


def test_users_need_a_valid_unexpired_token(start) -> None:
    now = [1_000_000.0]
    run = start(token_lifetime=60, clock=lambda: now[0])
    anonymous = run.session().get(run.url + "/v1.0/users")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    forged = run.session("sandbox.eyJleHAiOjk5OTk5OTk5OTl9.0000").get(run.url + "/v1.0/users")
    assert forged.status_code == 401

    session = run.session(run.token())
    assert session.get(run.url + "/v1.0/users").status_code == 200
    now[0] += 61
    expired = session.get(run.url + "/v1.0/users")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_tokens_survive_an_emulator_restart(start, tmp_path: Path) -> None:
    first = start()
    token = first.token()
    second = start()
    assert second.session(token).get(second.url + "/v1.0/users").status_code == 200


def test_throttling_answers_429_with_retry_after(start) -> None:
    run = start(rate_limit=3, rate_window=10.0)
    session = run.session(run.token())
    statuses = [session.get(run.url + "/v1.0/users").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = session.get(run.url + "/v1.0/users")
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(limited.headers["Retry-After"]) <= 10


def test_burst_429_and_error_faults_on_users(start) -> None:
    run = start(faults=FaultConfig(error_rate=1.0, error_statuses=(503,)))
    token_attempt = run.session().post(run.url + f"/{TENANT}/oauth2/v2.0/token", data={})
    assert token_attempt.status_code == 503 and token_attempt.json()["error"]["code"] == "serviceNotAvailable"
    session = run.session(run.emulator.issue_token())
    session.post(run.url + "/__sandbox/faults", json={"burst_429": 1})
    first = session.get(run.url + "/v1.0/users")
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert session.get(run.url + "/v1.0/users").status_code == 200


def test_product_graph_client_lists_every_enabled_user(start) -> None:
    users = make_users(30)
    run = start(users)
    with GraphClient(
        TENANT, CLIENT, SECRET, authority_host=run.url, graph_url=run.url, ca_bundle=run.ca, page_size=7
    ) as client:
        listed = client.list_users()
        run.closables.append(client._msal_app().http_client)
    assert sorted(u["id"] for u in listed) == sorted(u["id"] for u in users)
    assert all(set(u) == {"id", "employeeId", "mail", "userPrincipalName", "accountEnabled"} for u in listed)


def test_admin_state_replace_persists(start) -> None:
    run = start(make_users(2))
    admin = run.session()
    assert admin.get(run.url + "/__sandbox/state").json() == {"users": make_users(2)}
    replaced = admin.post(run.url + "/__sandbox/state", json={"users": make_users(1)})
    assert replaced.json() == {"users": make_users(1)}
    assert json.loads(run.emulator.state_path.read_text()) == {"users": make_users(1)}
    bad = admin.post(run.url + "/__sandbox/state", json={"users": [{"id": "x", "accountEnabled": "yes"}]})
    assert bad.status_code == 400 and "users[0].accountEnabled" in bad.json()["message"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[", "not valid JSON"),
        (json.dumps([]), "top level must be a JSON object"),
        (json.dumps({"users": [{"mail": "a@b.c"}]}), "users[0].id must be a non-empty string"),
        (
            json.dumps({"users": [{"id": "1", "employeeId": 12}]}),
            "users[0].employeeId must be a string or null",
        ),
    ],
)
def test_malformed_state_file_names_the_file_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "graph.json"
    path.write_text(content)
    with pytest.raises(GraphFixtureError) as error:
        GraphEmulator(path, TENANT, CLIENT, SECRET)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_certificates_are_reused_and_replaced_when_broken(tmp_path: Path) -> None:
    first = ensure_certs(tmp_path)
    ca_bytes = first.ca_path.read_bytes()
    assert ensure_certs(tmp_path).ca_path.read_bytes() == ca_bytes
    assert oct(first.key_path.stat().st_mode & 0o777) == "0o600"
    first.cert_path.write_text("garbage")
    second = ensure_certs(tmp_path)
    assert second.ca_path.read_bytes() != ca_bytes
    assert b"BEGIN CERTIFICATE" in second.cert_path.read_bytes()
