"""SafetyAmp emulator over real HTTP: paging, cluster tree, auth, rate limit, faults, counting, state."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from safetyamp_pipeline.sandbox.safetyamp_emulator import SafetyAmpEmulator
from safetyamp_pipeline.sandbox.safetyamp_store import FixtureError
from safetyamp_pipeline.sandbox.server import FaultConfig
from safetyamp_pipeline_tests.sandbox.test_safetyamp_emulator_support import (
    FIXTURE,
    TENANT,
    TOKEN,
    Running,
    new_user,
    start,
    write_fixture,
)


@pytest.fixture
def sa(tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path, fixture=write_fixture(tmp_path))
    yield running
    running.stop()


def _titles_fixture(directory: Path, count: int) -> Path:
    titles = [{"id": 100 + i, "name": f"Title {i:03d}"} for i in range(count)]
    return write_fixture(directory, {"user_titles": titles}, name="titles.json")


# ------------------------------------------------------------------ paging


def test_paging_with_page_and_limit_and_empty_page_past_the_end(tmp_path):
    sa = start(tmp_path, fixture=_titles_fixture(tmp_path, 7))
    try:
        pages = [
            [t["id"] for t in sa.get(f"/api/user_titles?page={p}&limit=3").json()["data"]]
            for p in (1, 2, 3, 4)
        ]
        assert pages == [[100, 101, 102], [103, 104, 105], [106], []]
        assert (
            sa.get("/api/user_titles?page=0&limit=3").json()
            == sa.get("/api/user_titles?page=1&limit=3").json()
        )
        assert sa.get("/api/user_titles?page=-2&limit=3").json()["data"][0]["id"] == 100
        assert [t["id"] for t in sa.get("/api/user_titles?limit=2").json()["data"]] == [100, 101]
    finally:
        sa.stop()


def test_limit_is_clamped_to_100_and_defaults_to_15(tmp_path):
    sa = start(tmp_path, fixture=_titles_fixture(tmp_path, 130))
    try:
        assert len(sa.get("/api/user_titles?page=1&limit=500").json()["data"]) == 100
        assert len(sa.get("/api/user_titles?page=2&limit=500").json()["data"]) == 30
        assert len(sa.get("/api/user_titles").json()["data"]) == 15
        assert len(sa.get("/api/user_titles?limit=0").json()["data"]) == 1
    finally:
        sa.stop()


def test_max_page_size_clamps_limit_silently(tmp_path):
    sa = start(tmp_path, fixture=_titles_fixture(tmp_path, 60), max_page_size=25)
    try:
        sizes = [len(sa.get(f"/api/user_titles?page={p}&limit=100").json()["data"]) for p in (1, 2, 3, 4)]
        assert sizes == [25, 25, 10, 0]
        assert len(sa.get("/api/user_titles?page=1&limit=10").json()["data"]) == 10
    finally:
        sa.stop()


def test_page_without_limit_is_a_400(sa):
    answer = sa.get("/api/users?page=1")
    assert answer.status_code == 400
    assert answer.json() == {"message": "Bad Request: A limit is required when using page."}


def test_list_envelope_and_user_shape(sa):
    answer = sa.get("/api/users?page=1&limit=25")
    assert answer.status_code == 200
    users = answer.json()["data"]
    dana = next(u for u in users if u["id"] == "Xy7Qa")
    assert len(dana) == 37
    assert dana["current_title"] == {"id": 18054, "name": "Foreman"}
    assert "current_title_id" not in dana
    assert dana["home_site"] == {
        "id": 5145,
        "name": "12345. - Refinery Expansion",
        "street": "1 River Rd",
        "street2": None,
        "city": "Baton Rouge",
        "state": "LA",
        "zip_code": "70801",
        "country": "US",
    }
    assert [r["name"] for r in dana["roles"]] == ["Field"]
    assert dana["roles"][0]["created_at"] == "2024-01-05T10:00:00.000000Z"
    assert dana["system_access"] is True and dana["text_opt_out"] == 0 and dana["sites"] == []


# ------------------------------------------------------------------ site clusters


def test_site_clusters_come_as_a_tree_with_path_and_depth(sa):
    tree = sa.get("/api/site_clusters").json()["data"]
    assert [root["id"] for root in tree] == [655]
    root = tree[0]
    assert (root["path"], root["depth"], root["parent_cluster_id"]) == ("/", 0, None)
    assert [c["id"] for c in root["children"]] == [709, 720]
    central = root["children"][0]
    assert (central["path"], central["depth"]) == ("/655/", 1)
    department = central["children"][0]
    assert (department["id"], department["path"], department["depth"], department["external_code"]) == (
        712,
        "/655/709/",
        2,
        "44",
    )
    assert department["children"] == []


@pytest.mark.parametrize("query", ["?page=1", "?page=0&limit=25", "?limit=25&page=2"])
def test_site_clusters_reject_any_page_parameter(sa, query):
    answer = sa.get("/api/site_clusters" + query)
    assert answer.status_code == 400
    assert answer.json() == {"message": "Bad Request: A limit is required when using page."}


def test_cluster_reparent_recomputes_path_of_the_subtree(sa):
    answer = sa.put(
        "/api/site_clusters/709", {"name": "Central", "parent_cluster_id": 720, "osha_establishment": 0}
    )
    assert answer.status_code == 200
    assert (answer.json()["data"]["path"], answer.json()["data"]["depth"]) == ("/655/720/", 2)
    department = sa.get("/api/site_clusters/712").json()["data"]
    assert (department["path"], department["depth"]) == ("/655/720/709/", 3)


# ------------------------------------------------------------------ single records and 404


def test_single_record_get_and_laravel_404(sa):
    assert sa.get("/api/sites/5146").json()["data"]["ext_id"] == "23456."
    assert sa.get("/api/users/Pq2Rs").json()["data"]["current_title"] == {
        "id": 18055,
        "name": "Project Engineer",
    }
    missing = sa.get("/api/users/NoOne")
    assert missing.status_code == 404
    assert missing.json() == {"message": "No query results for model [App\\Models\\User] NoOne"}
    assert sa.get("/api/sites/999").status_code == 404
    assert sa.patch("/api/users/NoOne", {"first_name": "X"}).status_code == 404


def test_asset_is_rendered_with_nested_site_type_and_trimmed_user(sa):
    asset = sa.get("/api/assets/40").json()["data"]
    assert asset["site"]["id"] == 5145 and asset["asset_type"]["name"] == "Vehicle"
    assert (
        asset["current_user"]["id"] == "Xy7Qa" and asset["current_user"]["current_title"]["name"] == "Foreman"
    )
    assert "roles" not in asset["current_user"]


# ------------------------------------------------------------------ auth


def test_missing_or_wrong_token_is_401(sa):
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        answer = sa.get("/api/users?limit=1", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"message": "Unauthenticated."}


def test_missing_fqdn_is_400_and_unknown_tenant_is_400(sa):
    no_fqdn = requests.get(
        sa.url + "/api/users?limit=1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert no_fqdn.status_code == 400 and "Fqdn" in no_fqdn.json()["message"]
    other = sa.get("/api/users?limit=1", headers={"Fqdn": "other.safetyamp.com"})
    assert other.status_code == 400 and other.json() == {"message": "Bad Request: Unknown tenant."}
    assert sa.get("/api/users?limit=1", headers={"Fqdn": TENANT.upper()}).status_code == 200


# ------------------------------------------------------------------ rate limiting


def test_rate_limit_per_token_with_laravel_body_and_headers(tmp_path):
    sa = start(tmp_path, rate_limit=5, rate_window=1.0)
    try:
        answers = [sa.get("/api/roles") for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "5" for a in answers)
        limited = answers[-1]
        assert limited.text == '{\n    "message": "Too Many Attempts."\n}'
        assert re.fullmatch(r"[1-9]\d*", limited.headers["Retry-After"])
        time.sleep(1.05)
        assert sa.get("/api/roles").status_code == 200
    finally:
        sa.stop()


def test_rate_limit_none_disables_limiting(tmp_path):
    sa = start(tmp_path, rate_limit=None)
    try:
        assert all(sa.get("/api/roles").status_code == 200 for _ in range(70))
    finally:
        sa.stop()


# ------------------------------------------------------------------ faults and counting


def test_fault_injection(tmp_path):
    sa = start(tmp_path, faults=FaultConfig(error_rate=1.0, seed=1))
    try:
        assert {sa.get("/api/roles").status_code for _ in range(6)} <= {500, 502, 503}
        assert sa.get("/api/roles").json()["message"] in {
            "Server Error",
            "Bad Gateway",
            "Service Unavailable",
        }
        sa.emulator.set_faults(FaultConfig(drop_rate=1.0))
        with pytest.raises(requests.ConnectionError):
            sa.get("/api/roles")
        sa.emulator.set_faults(FaultConfig(burst_429=2))
        statuses = [sa.get("/api/roles").status_code for _ in range(4)]
        assert statuses == [429, 429, 200, 200]
    finally:
        sa.stop()


def test_requests_are_counted_by_template_including_errors(tmp_path):
    sa = start(tmp_path, fixture=write_fixture(tmp_path), rate_limit=2, rate_window=60.0)
    try:
        sa.get("/api/users?page=1&limit=10")
        sa.patch("/api/users/Xy7Qa", {"middle_name": "J"})
        sa.patch("/api/users/Pq2Rs", {"email": "bad"})  # 429: over the limit of 2
        sa.get("/api/users?limit=1", headers={"Authorization": "Bearer nope"})  # 401
        sa.get("/__sandbox/state")
        sa.get("/__sandbox/requests")
        counts = sa.get("/__sandbox/requests").json()
        assert counts == {"total": 4, "by_route": {"GET /api/users": 2, "PATCH /api/users/{id}": 2}}
        assert sa.request("POST", "/__sandbox/requests/reset").json()["total"] == 0
    finally:
        sa.stop()


# ------------------------------------------------------------------ ids


def test_user_ids_are_five_char_hashids_and_other_ids_continue_after_the_fixture(sa):
    first = sa.post("/api/users", new_user()).json()["data"]["id"]
    second = sa.post("/api/users", new_user(email="other@example.com")).json()["data"]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{5}", first) and re.fullmatch(r"[A-Za-z0-9]{5}", second)
    assert first != second and first not in ("Xy7Qa", "Pq2Rs")
    site = sa.post("/api/sites", {"name": "New", "cluster_id": 712, "ext_id": "99999."})
    assert site.status_code == 201 and site.json()["data"]["id"] == 5147
    title = sa.post("/api/user_titles", {"name": "Welder"}).json()["data"]
    assert title["id"] == 18056
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", title["created_at"])


def test_hashids_are_deterministic(tmp_path):
    ids = []
    for run in ("a", "b"):
        sa = start(tmp_path, fixture=write_fixture(tmp_path), state_name=f"{run}.json")
        try:
            ids.append(
                [
                    sa.post("/api/users", new_user(email=f"u{i}@example.com")).json()["data"]["id"]
                    for i in range(3)
                ]
            )
        finally:
            sa.stop()
    assert ids[0] == ids[1] and len(set(ids[0])) == 3
    assert any(c.isupper() for c in "".join(ids[0])) and any(c.islower() for c in "".join(ids[0]))


# ------------------------------------------------------------------ persistence and fixtures


def test_state_survives_a_restart_and_new_ids_continue(tmp_path):
    # a debounce far longer than the test: only the flush on stop can put the writes on disk
    sa = start(tmp_path, fixture=write_fixture(tmp_path), save_interval=60.0)
    created = [
        sa.post("/api/users", new_user(email=f"p{i}@example.com")).json()["data"]["id"] for i in range(40)
    ]
    sa.patch("/api/users/Xy7Qa", {"last_name": "Reyes-Ortiz"})
    site_id = sa.post("/api/sites", {"name": "Kept", "cluster_id": 712, "ext_id": "55555."}).json()["data"][
        "id"
    ]
    sa.stop()  # answered writes must all be on disk now, whatever the debounce

    again = start(tmp_path)  # same state file, no fixture
    try:
        users = again.get("/api/users?page=1&limit=100").json()["data"]
        assert {u["id"] for u in users} >= set(created) | {"Xy7Qa", "Pq2Rs"}
        assert again.get("/api/users/Xy7Qa").json()["data"]["last_name"] == "Reyes-Ortiz"
        assert again.get(f"/api/sites/{site_id}").json()["data"]["ext_id"] == "55555."
        assert (
            again.post("/api/sites", {"name": "Next", "cluster_id": 712}).json()["data"]["id"] == site_id + 1
        )
        newest = again.post("/api/users", new_user(email="late@example.com")).json()["data"]["id"]
        assert newest not in created
        dup = again.post("/api/users", new_user(email="P3@example.com"))
        assert dup.status_code == 422  # the restored index still enforces uniqueness
    finally:
        again.stop()


def test_state_file_is_saved_shortly_after_a_write_without_stopping(sa):
    sa.post("/api/user_titles", {"name": "Welder"})
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        names = [t["name"] for t in json.loads(sa.emulator.state_path.read_text())["user_titles"]]
        if "Welder" in names:
            break
        time.sleep(0.05)
    assert "Welder" in names


def test_state_file_wins_over_the_fixture_on_restart(tmp_path):
    fixture = write_fixture(tmp_path)
    sa = start(tmp_path, fixture=fixture)
    sa.post("/api/user_titles", {"name": "Welder"})
    sa.stop()
    again = start(tmp_path, fixture=fixture)
    try:
        names = [t["name"] for t in again.get("/api/user_titles?limit=100").json()["data"]]
        assert names == ["Foreman", "Project Engineer", "Welder"]
    finally:
        again.stop()


def test_sandbox_state_has_the_fixture_shape_with_flat_clusters(sa):
    sa.post("/api/users", new_user(current_title_id=18055))
    state = sa.get("/__sandbox/state").json()
    assert set(state) == {"users", "sites", "site_clusters", "user_titles", "roles", "asset_types", "assets"}
    assert [c["id"] for c in state["site_clusters"]] == [655, 709, 712, 720]
    assert all("children" not in c for c in state["site_clusters"])
    assert state["site_clusters"][2]["parent_cluster_id"] == 709
    sam = next(u for u in state["users"] if u["email"] == "sam.okafor@example.com")
    assert sam["current_title"] == {"id": 18055, "name": "Project Engineer"}
    assert [r["name"] for r in sam["roles"]] == ["Field"]  # account default role when none is sent

    # the state answer is itself a loadable fixture holding the same records
    reloaded = SafetyAmpEmulator(
        sa.emulator.state_path.with_name("copy.json"),
        token=TOKEN,
        tenant=TENANT,
        fixture=write_fixture(sa.emulator.state_path.parent, state, name="from_state.json"),
    )
    try:
        assert reloaded.state() == state
    finally:
        reloaded.close()


def test_fixture_without_some_keys_means_empty_lists(tmp_path):
    sa = start(tmp_path, fixture=write_fixture(tmp_path, {"roles": FIXTURE["roles"]}))
    try:
        assert sa.get("/api/users?limit=10").json() == {"data": []}
        assert sa.get("/api/site_clusters").json() == {"data": []}
        assert len(sa.get("/api/roles").json()["data"]) == 2
    finally:
        sa.stop()


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{not json", "not valid JSON"),
        ([], "expected a JSON object"),
        ({"users": {}}, "'users' must be a list"),
        ({"usres": []}, "unknown key(s) 'usres'"),
        (
            {"sites": [{"id": 1, "name": "S", "cluster_id": 77}]},
            "sites[0] (id 1): cluster_id 77 does not match",
        ),
        ({"user_titles": [{"id": 1, "name": "A"}, {"id": 1, "name": "B"}]}, "user_titles[1]: duplicate id 1"),
        ({"users": [{"id": 5, "first_name": "A"}]}, "users[0]: user id must be a non-empty string"),
        (
            {"users": [{"id": "aaaaa", "email": "X@e.com"}, {"id": "bbbbb", "email": "x@E.com"}]},
            "users: email 'x@E.com' is used by both id 'aaaaa' and id 'bbbbb'",
        ),
    ],
)
def test_malformed_fixture_raises_a_clear_error_naming_the_file(tmp_path, document, problem):
    path = tmp_path / "broken.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    with pytest.raises(FixtureError) as error:
        SafetyAmpEmulator(tmp_path / "state.json", token=TOKEN, tenant=TENANT, fixture=path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)
    assert not (tmp_path / "state.json").exists()
