"""SafetyAmpClient against the SafetyAmp emulator over real HTTP (and a tiny local app serving
malformed answers). Waits that do not need real time use a recording `sleep`."""

from __future__ import annotations

import json
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

from safetyamp_pipeline.clients.errors import (
    AmbiguousWrite,
    ConfigError,
    MalformedResponse,
    MalformedWriteResponse,
    NotFound,
    RateLimited,
    RetriesExhausted,
    Unauthorized,
    ValidationRejected,
)
from safetyamp_pipeline.clients.safetyamp import DRY_RUN_MARK, SafetyAmpClient
from safetyamp_pipeline.sandbox.safetyamp_emulator import SafetyAmpEmulator
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

TOKEN = "sa-test-token-7f3c9e"
TENANT = "acme.safetyamp.test"


class RecordingSleep:
    """Stands in for time.sleep: records the waits without spending them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def write_fixture(tmp_path: Path, *, users: int = 0, titles: int = 3) -> Path:
    document: dict[str, Any] = {
        "site_clusters": [
            {"id": 1, "name": "I&I", "parent_cluster_id": None, "external_code": None, "osha_establishment": 0},
            {"id": 2, "name": "Central", "parent_cluster_id": 1, "external_code": "Central", "osha_establishment": 0},
            {"id": 3, "name": "44 - Pipe", "parent_cluster_id": 2, "external_code": "44", "osha_establishment": 0},
            {"id": 4, "name": "45 - Steel", "parent_cluster_id": 2, "external_code": "45", "osha_establishment": 0},
            {"id": 5, "name": "East", "parent_cluster_id": 1, "external_code": "East", "osha_establishment": 0},
        ],
        "user_titles": [{"id": 100 + n, "name": f"Title {n}"} for n in range(titles)],
        "users": [
            {"first_name": f"First{n}", "last_name": f"Last{n}", "email": f"person{n}@example.test", "emp_id": str(1000 + n)}
            for n in range(users)
        ],
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "fixture-safetyamp.json"
    path.write_text(json.dumps(document))
    return path


@contextmanager
def emulator(
    tmp_path: Path,
    *,
    users: int = 0,
    titles: int = 3,
    rate_limit: int | None = None,
    rate_window: float = 60.0,
    faults: FaultConfig | None = None,
    max_page_size: int = 100,
) -> Iterator[str]:
    app = SafetyAmpEmulator(
        tmp_path / "state-safetyamp.json",
        TOKEN,
        TENANT,
        fixture=write_fixture(tmp_path, users=users, titles=titles),
        rate_limit=rate_limit,
        rate_window=rate_window,
        faults=faults,
        max_page_size=max_page_size,
    )
    server = ServerThread(app.app).start()
    try:
        yield server.url
    finally:
        server.stop()


def counts(url: str) -> dict[str, Any]:
    return requests.get(url + "/__sandbox/requests", timeout=5).json()


def reset_counts(url: str) -> None:
    requests.post(url + "/__sandbox/requests/reset", timeout=5).raise_for_status()


def set_faults(url: str, **config: Any) -> None:
    requests.post(url + "/__sandbox/faults", json=config, timeout=5).raise_for_status()


def server_state(url: str) -> dict[str, Any]:
    return requests.get(url + "/__sandbox/state", timeout=5).json()


def client(url: str, **kwargs: Any) -> SafetyAmpClient:
    return SafetyAmpClient(url, TOKEN, TENANT, **kwargs)


# -- rate limiting ---------------------------------------------------------------------------


def test_a_300_request_burst_at_60_per_window_draws_no_429(tmp_path: Path) -> None:
    # Scaled time: client and emulator both allow 60 requests per 1 s instead of per minute.
    with emulator(tmp_path, rate_limit=60, rate_window=1.0) as url:
        sa = client(url, requests_per_window=60, window_seconds=1.0)
        title_id = server_state(url)["user_titles"][0]["id"]
        started = time.monotonic()
        for _ in range(300):
            assert sa.get("user_titles", title_id)["id"] == title_id
        elapsed = time.monotonic() - started
        seen = counts(url)
    assert seen["total"] == 300  # a 429 would have been counted and retried
    assert sa.stats.rate_limited_responses == 0
    assert elapsed >= 4.0  # 5 windows' worth of requests cannot fit in less than 4 windows
    assert sa.stats.limiter_wait_seconds > 0


def test_without_the_client_limiter_the_emulator_answers_429_and_the_client_waits_it_out(tmp_path: Path) -> None:
    # The control for the test above: the same emulator does reject a burst, and the client
    # then honours Retry-After instead of failing or giving up.
    # (20 per 2 s here, so that even a loaded machine sends request 21 inside the window.)
    with emulator(tmp_path, rate_limit=20, rate_window=2.0) as url:
        sa = client(url, requests_per_window=10_000, window_seconds=1.0)
        title_id = server_state(url)["user_titles"][0]["id"]
        for _ in range(30):
            assert sa.get("user_titles", title_id)["id"] == title_id
        seen = counts(url)
    assert sa.stats.rate_limited_responses > 0
    assert seen["total"] == 30 + sa.stats.rate_limited_responses
    assert sa.stats.retry_after_wait_seconds >= 1.0


def test_a_forced_429_is_waited_out_for_its_retry_after(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(burst_429=2)) as url:
        sa = client(url, sleep=sleep)
        titles = sa.list("user_titles")
        seen = counts(url)
    assert [t["name"] for t in titles] == ["Title 0", "Title 1", "Title 2"]
    assert sleep.waits == [1.0, 1.0]  # the emulator's Retry-After
    assert sa.stats.rate_limited_responses == 2
    assert sa.stats.retry_after_wait_seconds == 2.0
    assert seen["by_route"] == {"GET /api/user_titles": 5}  # page 0 (429, 429, answer), 1 and the empty 2


def test_persistent_429_ends_in_rate_limited_with_the_servers_retry_after(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(burst_429=50)) as url:
        sa = client(url, sleep=sleep, max_retries=2)
        with pytest.raises(RateLimited) as caught:
            sa.list("user_titles")
        seen = counts(url)
    assert caught.value.retry_after == 1.0
    assert caught.value.attempts == 3
    assert "GET /api/user_titles" in str(caught.value)
    assert seen["total"] == 3


def test_the_total_wait_is_capped(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(burst_429=50)) as url:
        sa = client(url, sleep=sleep, max_retries=10, max_total_wait=2.5)
        with pytest.raises(RateLimited, match="wait budget"):
            sa.list("user_titles")
    assert sleep.waits == [1.0, 1.0]  # a third wait would pass 2.5 s, so it is not started


# -- server errors, lost connections, timeouts -------------------------------------------------


def test_server_errors_are_retried_with_growing_backoff_then_surface(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(error_rate=1.0, error_statuses=(502,))) as url:
        sa = client(url, sleep=sleep, rng=lambda: 1.0, max_retries=3)
        with pytest.raises(RetriesExhausted) as caught:
            sa.list("user_titles")
        seen = counts(url)
    assert caught.value.status == 502
    assert seen["by_route"] == {"GET /api/user_titles": 4}
    assert sleep.waits == [0.5, 1.0, 2.0]
    assert not isinstance(caught.value, RateLimited)


def test_intermittent_server_errors_are_absorbed_and_the_listing_is_complete(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    faults = FaultConfig(error_rate=0.5, seed=1, error_statuses=(500, 503))
    with emulator(tmp_path, users=250, faults=faults) as url:
        sa = client(url, sleep=sleep)
        users = sa.list("users")
        set_faults(url)
        expected = {u["id"] for u in server_state(url)["users"]}
    assert {u["id"] for u in users} == expected
    assert len(users) == 250
    assert sa.stats.retries > 0


def test_dropped_connections_on_a_read_are_retried_then_surface(tmp_path: Path) -> None:
    sleep = RecordingSleep()
    with emulator(tmp_path, faults=FaultConfig(drop_rate=1.0)) as url:
        sa = client(url, sleep=sleep, max_retries=2)
        with pytest.raises(RetriesExhausted) as caught:
            sa.list("user_titles")
        seen = counts(url)
    assert caught.value.status is None
    assert "ConnectionError" in str(caught.value)
    assert seen["total"] == 3


def test_a_create_whose_connection_drops_is_not_retried_but_reported_ambiguous(tmp_path: Path) -> None:
    with emulator(tmp_path, faults=FaultConfig(drop_rate=1.0)) as url:
        sa = client(url, sleep=RecordingSleep())
        with pytest.raises(AmbiguousWrite, match="re-read before retrying"):
            sa.create("user_titles", {"name": "Welder"})
        seen = counts(url)
    assert seen["by_route"] == {"POST /api/user_titles": 1}


def test_a_create_answered_500_is_not_retried(tmp_path: Path) -> None:
    with emulator(tmp_path, faults=FaultConfig(error_rate=1.0, error_statuses=(500,))) as url:
        sa = client(url, sleep=RecordingSleep())
        with pytest.raises(AmbiguousWrite) as caught:
            sa.create("user_titles", {"name": "Welder"})
        seen = counts(url)
    assert caught.value.status == 500
    assert seen["by_route"] == {"POST /api/user_titles": 1}


def test_a_create_answered_503_or_429_is_retried_and_happens_once(tmp_path: Path) -> None:
    with emulator(tmp_path, faults=FaultConfig(burst_429=1)) as url:
        sa = client(url, sleep=RecordingSleep())
        created = sa.create("user_titles", {"name": "Welder"})
        seen = counts(url)
        names = [t["name"] for t in server_state(url)["user_titles"]]
    assert created["name"] == "Welder" and isinstance(created["id"], int)
    assert seen["by_route"] == {"POST /api/user_titles": 2}
    assert names.count("Welder") == 1

    with emulator(tmp_path / "b", faults=FaultConfig(error_rate=1.0, error_statuses=(503,))) as url:
        sa = client(url, sleep=RecordingSleep(), max_retries=2)
        with pytest.raises(RetriesExhausted) as caught:
            sa.create("user_titles", {"name": "Welder"})
        seen = counts(url)
    assert caught.value.status == 503
    assert seen["by_route"] == {"POST /api/user_titles": 3}


def test_a_connection_refused_create_is_retried_because_nothing_was_sent(tmp_path: Path) -> None:
    with emulator(tmp_path) as url:
        dead_url = url  # the server stops at the end of the block; its port then refuses
    sa = client(dead_url, sleep=RecordingSleep(), max_retries=2, timeout=(0.5, 1))
    with pytest.raises(RetriesExhausted) as caught:
        sa.create("user_titles", {"name": "Welder"})
    assert not isinstance(caught.value, AmbiguousWrite)
    assert caught.value.attempts == 3


def test_every_request_has_a_read_timeout(tmp_path: Path) -> None:
    with emulator(tmp_path, faults=FaultConfig(latency_ms=2000)) as url:
        sa = client(url, sleep=RecordingSleep(), max_retries=1, timeout=(2, 0.15))
        # Without a read timeout both attempts would wait the 2 s and succeed.
        with pytest.raises(RetriesExhausted, match="ReadTimeout"):
            sa.list("user_titles")
        with pytest.raises(AmbiguousWrite, match="ReadTimeout"):
            sa.create("user_titles", {"name": "Welder"})


# -- typed answers ---------------------------------------------------------------------------


def test_a_422_reaches_the_caller_with_its_field_errors_and_is_not_retried(tmp_path: Path) -> None:
    with emulator(tmp_path, users=2) as url:
        sa = client(url)
        with pytest.raises(ValidationRejected) as caught:
            sa.create("users", {"first_name": "Ann", "last_name": "Lee", "email": "person1@example.test"})
        with pytest.raises(ValidationRejected) as blank:
            sa.create("user_titles", {"name": "   "})
        seen = counts(url)
    assert caught.value.status == 422
    assert caught.value.errors == {"email": ["The email has already been taken."]}
    assert "POST /api/users" in str(caught.value)
    assert blank.value.errors == {"name": ["The name field is required."]}
    assert seen["by_route"] == {"POST /api/users": 1, "POST /api/user_titles": 1}


def test_a_wrong_token_is_unauthorized_and_a_missing_record_not_found(tmp_path: Path) -> None:
    with emulator(tmp_path, users=1) as url:
        stranger = SafetyAmpClient(url, "not-the-token-123", TENANT)
        with pytest.raises(Unauthorized) as caught:
            stranger.list("users")
        with pytest.raises(NotFound) as missing:
            client(url).get("users", "zzzzz")
    assert caught.value.status == 401
    assert "GET /api/users" in str(caught.value)
    assert "not-the-token-123" not in str(caught.value)
    assert missing.value.status == 404
    assert "GET /api/users/{id}" in str(missing.value)


def test_settings_that_are_missing_or_not_an_origin_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="without a path"):
        SafetyAmpClient("https://api.safetyamp.test/api", TOKEN, TENANT)
    with pytest.raises(ConfigError, match="SAFETYAMP_TOKEN"):
        SafetyAmpClient("https://api.safetyamp.test", "", TENANT)
    with pytest.raises(ConfigError, match="SAFETYAMP_FQDN"):
        SafetyAmpClient("https://api.safetyamp.test", TOKEN, "")


# -- listing ---------------------------------------------------------------------------------


def test_listing_reads_every_page_and_is_frugal(tmp_path: Path) -> None:
    with emulator(tmp_path, users=250) as url:
        sa = client(url)
        first = sa.list("users")
        first_count = counts(url)["by_route"]["GET /api/users"]
        reset_counts(url)
        second = sa.list("users")
        second_count = counts(url)["by_route"]["GET /api/users"]
        expected = [u["id"] for u in server_state(url)["users"]]
    assert [u["id"] for u in first] == expected
    assert [u["id"] for u in second] == expected
    # The first listing learns that page 0 repeats page 1 (one extra request: 0, 1, 2, 3);
    # later listings read pages 1, 2 and the short page 3, and nothing past it.
    assert first_count == 4
    assert second_count == 3


def test_a_server_that_grants_fewer_records_per_page_than_asked_is_read_whole(tmp_path: Path) -> None:
    # The emulator counts pages from 1 and clamps `limit` to 25 without saying so.
    with emulator(tmp_path, users=60, max_page_size=25) as url:
        sa = client(url)  # asks for 100 per page
        first = sa.list("users")
        first_count = counts(url)["by_route"]["GET /api/users"]
        reset_counts(url)
        second = sa.list("users")
        second_count = counts(url)["by_route"]["GET /api/users"]
        expected = [u["id"] for u in server_state(url)["users"]]
    assert [u["id"] for u in first] == expected
    assert [u["id"] for u in second] == expected
    # First listing: page 0, page 1 (repeats page 0: pages count from 1), 2, and 3 (10 records,
    # fewer than the 25 the server granted: the end). Later listings: pages 1, 2, 3 only.
    assert first_count == 4
    assert second_count == 3


def test_a_short_page_ends_a_list_once_the_server_is_known_to_grant_more(tmp_path: Path) -> None:
    with emulator(tmp_path, users=40, titles=3) as url:
        sa = client(url)
        assert len(sa.list("users")) == 40
        # 40 < 100 asked might be a cap: page 0, page 1 (repeats page 0), page 2 (empty).
        assert counts(url)["by_route"] == {"GET /api/users": 3}
        reset_counts(url)
        assert len(sa.list("user_titles")) == 3  # 3 < the 40 the server granted: the end
        assert counts(url)["by_route"] == {"GET /api/user_titles": 1}
    with emulator(tmp_path / "b", users=200) as url:
        sa = client(url)
        sa.list("users")
        reset_counts(url)
        assert len(sa.list("users")) == 200
        assert counts(url)["by_route"] == {"GET /api/users": 3}  # pages 1, 2 and the empty 3


def test_a_failed_page_fails_the_whole_listing(tmp_path: Path) -> None:
    session = requests.Session()
    pages_answered = []

    def break_the_server_after_the_first_page(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        pages_answered.append(response.url)
        if len(pages_answered) == 1:
            set_faults(url, error_rate=1.0, error_statuses=[500])

    session.hooks["response"].append(break_the_server_after_the_first_page)
    with emulator(tmp_path, users=250) as url:
        sa = client(url, session=session, sleep=RecordingSleep(), max_retries=2)
        with pytest.raises(RetriesExhausted) as caught:
            sa.list("users")
    assert caught.value.status == 500
    assert len(pages_answered) == 4  # page 0 fine, page 1 failed three times


def test_site_clusters_are_read_once_as_a_tree_and_flattened(tmp_path: Path) -> None:
    with emulator(tmp_path) as url:
        clusters = client(url).list("site_clusters")
        seen = counts(url)
    assert seen["by_route"] == {"GET /api/site_clusters": 1}  # no page parameter (it would be a 400)
    assert {c["id"]: c["parent_cluster_id"] for c in clusters} == {1: None, 2: 1, 3: 2, 4: 2, 5: 1}
    assert all("children" not in c for c in clusters)


# -- writes, dry run and statistics ------------------------------------------------------------


def test_create_get_and_update_return_the_servers_record_and_stats_use_route_templates(tmp_path: Path) -> None:
    with emulator(tmp_path) as url:
        sa = client(url)
        created = sa.create("users", {"first_name": "Ann", "last_name": "Lee", "email": "ann.lee@example.test"})
        patched = sa.update("users", created["id"], {"city": "Baton Rouge"})
        put = sa.update(
            "site_clusters", 4,
            {"name": "45 - Steel", "parent_cluster_id": 5, "osha_establishment": 0}, method="PUT",
        )
        fetched = sa.get("users", created["id"])
        seen = counts(url)
    assert isinstance(created["id"], str) and created["email"] == "ann.lee@example.test"
    assert patched["city"] == "Baton Rouge" and patched["id"] == created["id"]
    assert put["parent_cluster_id"] == 5
    assert fetched["city"] == "Baton Rouge"
    assert sa.stats.requests_by_route == seen["by_route"] == {
        "POST /api/users": 1,
        "PATCH /api/users/{id}": 1,
        "PUT /api/site_clusters/{id}": 1,
        "GET /api/users/{id}": 1,
    }
    assert sa.stats.total_requests == seen["total"] == 4


def test_dry_run_reads_but_sends_no_write(tmp_path: Path) -> None:
    with emulator(tmp_path, users=3) as url:
        sa = client(url, dry_run=True)
        users = sa.list("users")
        planned = sa.create("user_titles", {"name": "Welder"})
        changed = sa.update("users", users[0]["id"], {"city": "Metairie"})
        seen = counts(url)
        state = server_state(url)
    assert len(users) == 3
    assert planned == {DRY_RUN_MARK: True, "name": "Welder"}
    assert changed == {DRY_RUN_MARK: True, "id": users[0]["id"], "city": "Metairie"}
    assert set(seen["by_route"]) == {"GET /api/users"}
    assert "Welder" not in [t["name"] for t in state["user_titles"]]
    assert sa.stats.planned_writes_by_route == {"POST /api/user_titles": 1, "PATCH /api/users/{id}": 1}


# -- malformed answers (a tiny local app: the emulator never sends them) ----------------------


def _malformed_app() -> Starlette:
    async def collection(request: Request) -> Response:
        kind = request.path_params["kind"]
        page = int(request.query_params.get("page", "0"))
        if kind == "html":
            return Response("<html><body>Maintenance</body></html>", media_type="text/html")
        if kind == "truncated":
            return Response('{"data": [{"id": 1, "na', media_type="application/json")
        if kind == "nodata":
            return JSONResponse({"items": []})
        if kind == "wrongtype":
            return JSONResponse({"data": {"id": 1}})
        if kind == "noid":
            return JSONResponse({"data": [{"name": "x"}]})
        if kind == "second_page_html":
            if page <= 1:
                return JSONResponse({"data": [{"id": 1}, {"id": 2}]})
            return Response("<html>502 Bad Gateway</html>", media_type="text/html")
        if kind == "stuck":
            return JSONResponse({"data": [{"id": 1}, {"id": 2}]})
        return JSONResponse({"message": "no"}, status_code=404)

    async def create(request: Request) -> Response:
        return JSONResponse({"data": []}, status_code=201)

    return Starlette(
        routes=[
            Route("/api/{kind}", collection, methods=["GET"]),
            Route("/api/{kind}", create, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def malformed_url() -> Iterator[str]:
    with ServerThread(_malformed_app()) as server:
        yield server.url


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("html", "not valid JSON"),
        ("truncated", "not valid JSON"),
        ("nodata", "no `data`"),
        ("wrongtype", "not a list"),
        ("noid", "not a record with an id"),
    ],
)
def test_malformed_bodies_become_malformed_response_naming_the_route(
    malformed_url: str, kind: str, problem: str
) -> None:
    with pytest.raises(MalformedResponse, match=problem) as caught:
        client(malformed_url).list(kind)
    assert f"GET /api/{kind}" in str(caught.value)


def test_a_malformed_later_page_fails_the_listing(malformed_url: str) -> None:
    sa = client(malformed_url, page_size=2)
    with pytest.raises(MalformedResponse, match="GET /api/second_page_html"):
        sa.list("second_page_html")


def test_pagination_that_does_not_advance_is_an_error_not_an_endless_loop(malformed_url: str) -> None:
    sa = client(malformed_url, page_size=2)
    with pytest.raises(MalformedResponse, match="does not advance"):
        sa.list("stuck")
    assert sa.stats.requests_by_route == {"GET /api/stuck": 3}


def test_an_unreadable_create_answer_is_malformed_and_ambiguous(malformed_url: str) -> None:
    with pytest.raises(MalformedWriteResponse) as caught:
        client(malformed_url).create("things", {"name": "x"})
    assert isinstance(caught.value, AmbiguousWrite)
    assert isinstance(caught.value, MalformedResponse)
    assert "POST /api/things" in str(caught.value)


def test_the_three_clients_work_from_the_sandbox_env_alone(tmp_path: Path) -> None:
    from safetyamp_pipeline.clients.graph import GraphClient
    from safetyamp_pipeline.clients.samsara import SamsaraClient
    from safetyamp_pipeline.sandbox.runtime import start_sandbox

    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    write_fixture(fixtures, users=2).rename(fixtures / "safetyamp.json")
    (fixtures / "samsara.json").write_text(json.dumps(
        {"vehicles": [{"id": "1", "name": "Truck", "createdAtTime": "2024-01-01T00:00:00Z"}], "drivers": []}
    ))
    (fixtures / "graph.json").write_text(json.dumps(
        {"users": [{"id": "g1", "employeeId": "1000", "mail": "a@contoso.test",
                    "userPrincipalName": "a@contoso.test", "accountEnabled": True}]}
    ))
    with start_sandbox(tmp_path / "run", fixtures=fixtures) as sandbox:
        env = sandbox.env
        sa = SafetyAmpClient(env["SAFETYAMP_API_URL"], env["SAFETYAMP_TOKEN"], env["SAFETYAMP_FQDN"])
        samsara = SamsaraClient(env["SAMSARA_API_URL"], env["SAMSARA_API_TOKEN"])
        graph = GraphClient(
            env["MS_GRAPH_TENANT_ID"], env["MS_GRAPH_CLIENT_ID"], env["MS_GRAPH_CLIENT_SECRET"],
            authority_host=env["MS_GRAPH_AUTHORITY_HOST"], graph_url=env["MS_GRAPH_API_URL"],
            ca_bundle=env["SAFETYAMP_CA_BUNDLE"],
        )
        assert len(sa.list("users")) == 2
        assert len(sa.list("site_clusters")) == 5
        assert [v["id"] for v in samsara.list_vehicles()] == ["1"]
        assert [u["employeeId"] for u in graph.list_users()] == ["1000"]
