"""start_sandbox(): fixtures by hand, empty and malformed files, sandbox.env, persistence."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import msal
import pytest
import requests

from safetyamp_pipeline.sandbox.runtime import (
    SandboxFixtureError,
    format_env,
    load_env_file,
    start_sandbox,
)

ENV_KEYS = {
    "SAFETYAMP_ENV",
    "SAFETYAMP_API_URL",
    "SAFETYAMP_TOKEN",
    "SAFETYAMP_FQDN",
    "SAMSARA_API_URL",
    "SAMSARA_API_TOKEN",
    "MS_GRAPH_AUTHORITY_HOST",
    "MS_GRAPH_API_URL",
    "MS_GRAPH_TENANT_ID",
    "MS_GRAPH_CLIENT_ID",
    "MS_GRAPH_CLIENT_SECRET",
    "SAFETYAMP_CA_BUNDLE",
    "VIEWPOINT_DB_URL",
    "VIEWPOINT_PR_COMPANY",
    "VIEWPOINT_JC_COMPANY",
}

VISTA_DDL = """
CREATE TABLE bPREH (PRCo INTEGER, Employee INTEGER, FirstName TEXT, MidName TEXT, LastName TEXT, Sex TEXT,
    PRDept TEXT, Email TEXT, udEmpTitle TEXT, BirthDate TEXT, HireDate TEXT, TermDate TEXT, Phone TEXT,
    CellPhone TEXT, Address TEXT, City TEXT, State TEXT, Zip TEXT);
CREATE TABLE bPRDP (PRCo INTEGER, PRDept TEXT, Description TEXT, udRegion TEXT);
CREATE TABLE bJCJM (JCCo INTEGER, Job TEXT, Description TEXT, Contract TEXT, JobStatus INTEGER, ShipAddress TEXT,
    ShipCity TEXT, ShipState TEXT, ShipZip TEXT);
CREATE TABLE bJCCM (JCCo INTEGER, Contract TEXT, Department TEXT);
CREATE TABLE bPRJC (PRCo INTEGER, Employee INTEGER, JCCo INTEGER, Job TEXT, PREndDate TEXT, Hrs NUMERIC);
INSERT INTO bPRDP VALUES (1, '10', 'Pipe Fabrication', 'Central');
INSERT INTO bPREH (PRCo, Employee, FirstName, LastName, PRDept) VALUES (1, 4321, 'Ada', 'Hand', '10');
"""

SAFETYAMP_FIXTURE = {
    "site_clusters": [{"id": 7, "name": "Hand Root", "parent_cluster_id": None, "external_code": None}],
    "sites": [{"id": 70, "cluster_id": 7, "name": "Hand Yard", "ext_id": "99999."}],
    "roles": [{"id": 3, "name": "Employee", "account_default": 1}],
    "user_titles": [{"id": 11, "name": "Welder"}],
    "users": [
        {
            "id": "HaNd1",
            "emp_id": "4321",
            "first_name": "Ada",
            "last_name": "Hand",
            "email": "ada.hand@example.com",
            "current_title": {"id": 11, "name": "Welder"},
            "roles": [{"id": 3}],
        }
    ],
}
VEHICLE = {
    "id": "212014918000001",
    "name": "Hand Truck",
    "serial": "GHAND-001",
    "createdAtTime": "2024-01-01T00:00:00Z",
}
SAMSARA_FIXTURE = {"vehicles": [VEHICLE], "drivers": [{"id": "77", "name": "Hand Driver", "notes": "4321"}]}
GRAPH_USER = {
    "id": "6f2b1c9e-0000-4000-8000-000000000001",
    "employeeId": "4321",
    "mail": "ada.hand@example.com",
    "userPrincipalName": "ada.hand@example.com",
    "accountEnabled": True,
}
GRAPH_FIXTURE = {"users": [GRAPH_USER]}


@pytest.fixture(autouse=True)
def _no_global_ca_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a Session's `verify` (MSAL's `verify=`); the sandbox CA
    # must come from SAFETYAMP_CA_BUNDLE alone, so the ambient bundle is removed for these tests.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def write_fixtures(directory: Path, *, skip: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "safetyamp.json": SAFETYAMP_FIXTURE,
        "samsara.json": SAMSARA_FIXTURE,
        "graph.json": GRAPH_FIXTURE,
    }
    for name, document in files.items():
        if name not in skip:
            (directory / name).write_text(json.dumps(document))
    if "vista.db" not in skip:
        connection = sqlite3.connect(directory / "vista.db")
        connection.executescript(VISTA_DDL)
        connection.commit()
        connection.close()
    return directory


def graph_token(env: dict[str, str]) -> str:
    app = msal.ConfidentialClientApplication(
        env["MS_GRAPH_CLIENT_ID"],
        client_credential=env["MS_GRAPH_CLIENT_SECRET"],
        authority=f"{env['MS_GRAPH_AUTHORITY_HOST']}/{env['MS_GRAPH_TENANT_ID']}",
        instance_discovery=False,
        verify=env["SAFETYAMP_CA_BUNDLE"],
    )
    try:
        return app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])["access_token"]
    finally:
        app.http_client.close()


def test_hand_written_fixtures_load_and_sandbox_env_reaches_all_three_emulators(tmp_path: Path) -> None:
    fixtures = write_fixtures(tmp_path / "fixtures")
    with start_sandbox(tmp_path / "run", fixtures=fixtures) as sandbox:
        env = load_env_file(tmp_path / "run" / "sandbox.env")
        assert env == sandbox.env
        assert set(env) == ENV_KEYS and "REQUESTS_CA_BUNDLE" not in env
        assert env["SAFETYAMP_ENV"] == "sandbox"
        for key in ("SAFETYAMP_API_URL", "SAMSARA_API_URL", "MS_GRAPH_API_URL"):
            assert env[key].count("/") == 2, f"{key} must be an origin without a path"
        assert env["MS_GRAPH_API_URL"].startswith("https://")

        copy = (tmp_path / "run" / "vista.db").resolve()
        assert env["VIEWPOINT_DB_URL"] == f"sqlite:///{copy}"
        with sqlite3.connect(copy) as db:
            assert db.execute("SELECT FirstName FROM bPREH WHERE Employee = 4321").fetchone() == ("Ada",)

        roles = requests.get(
            env["SAFETYAMP_API_URL"] + "/api/roles",
            headers={"Authorization": f"Bearer {env['SAFETYAMP_TOKEN']}", "Fqdn": env["SAFETYAMP_FQDN"]},
            timeout=5,
        )
        assert roles.status_code == 200 and [r["name"] for r in roles.json()["data"]] == ["Employee"]
        users = requests.get(
            env["SAFETYAMP_API_URL"] + "/api/users",
            headers={"Authorization": f"Bearer {env['SAFETYAMP_TOKEN']}", "Fqdn": env["SAFETYAMP_FQDN"]},
            timeout=5,
        ).json()["data"]
        assert [(u["id"], u["emp_id"]) for u in users] == [("HaNd1", "4321")]

        vehicles = requests.get(
            env["SAMSARA_API_URL"] + "/fleet/vehicles",
            headers={"Authorization": f"Bearer {env['SAMSARA_API_TOKEN']}"},
            timeout=5,
        )
        assert vehicles.json()["data"] == [VEHICLE]

        entra = requests.get(
            env["MS_GRAPH_API_URL"] + "/v1.0/users",
            params={"$select": "id,employeeId,mail,userPrincipalName,accountEnabled"},
            headers={"Authorization": f"Bearer {graph_token(env)}"},
            verify=env["SAFETYAMP_CA_BUNDLE"],
            timeout=5,
        )
        assert entra.json()["value"] == [GRAPH_USER]


def test_missing_fixture_files_mean_empty_states_and_replace_older_copies(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with start_sandbox(run, fixtures=write_fixtures(tmp_path / "full")):
        pass
    assert json.loads((run / "graph.json").read_text())["users"]

    only_samsara = write_fixtures(tmp_path / "partial", skip=("safetyamp.json", "graph.json", "vista.db"))
    with start_sandbox(run, fixtures=only_samsara) as sandbox:
        assert sandbox.graph.state() == {"users": []}
        assert all(records == [] for records in sandbox.safetyamp.state().values())
        assert sandbox.samsara.state()["vehicles"] == [VEHICLE]
        with sqlite3.connect(run / "vista.db") as db:
            assert db.execute("SELECT COUNT(*) FROM bPREH").fetchone() == (0,)
            assert db.execute("SELECT COUNT(*) FROM bPRJC").fetchone() == (0,)


def test_empty_directory_without_fixtures_starts_empty(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "fresh") as sandbox:
        assert sandbox.samsara.state() == {"vehicles": [], "drivers": []}
        assert (tmp_path / "fresh" / "vista.db").exists()
        assert (tmp_path / "fresh" / "ca.pem").exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("samsara.json", '{"vehicles": [', "not valid JSON"),
        (
            "graph.json",
            json.dumps({"users": [{"id": "1", "accountEnabled": "yes"}]}),
            "users[0].accountEnabled",
        ),
        ("safetyamp.json", json.dumps({"users": [{"id": 5, "email": "x@y.z"}]}), "users[0]"),
        ("vista.db", "this is not sqlite", "vista.db"),
    ],
)
def test_malformed_fixture_is_refused_naming_the_file_and_nothing_is_copied(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    fixtures = write_fixtures(tmp_path / "fixtures", skip=(name,))
    (fixtures / name).write_text(content)
    run = tmp_path / "run"
    run.mkdir()
    (run / "samsara.json").write_text(json.dumps({"vehicles": [], "drivers": []}))
    with pytest.raises(SandboxFixtureError) as error:
        start_sandbox(run, fixtures=fixtures)
    assert str(fixtures / name) in str(error.value) and problem in str(error.value)
    assert json.loads((run / "samsara.json").read_text()) == {"vehicles": [], "drivers": []}


def test_vista_db_without_a_required_column_is_refused(tmp_path: Path) -> None:
    fixtures = write_fixtures(tmp_path / "fixtures", skip=("vista.db",))
    connection = sqlite3.connect(fixtures / "vista.db")
    connection.executescript(
        VISTA_DDL.replace("udRegion TEXT", "Region TEXT").replace(", 'Central'", ", 'C'")
    )
    connection.close()
    with pytest.raises(SandboxFixtureError, match=r"table bPRDP lacks column\(s\) udRegion"):
        start_sandbox(tmp_path / "run", fixtures=fixtures)


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with start_sandbox(run, fixtures=write_fixtures(tmp_path / "fixtures")) as sandbox:
        env = sandbox.env
        created = requests.post(
            env["SAFETYAMP_API_URL"] + "/api/user_titles",
            json={"name": "Foreman"},
            headers={"Authorization": f"Bearer {env['SAFETYAMP_TOKEN']}", "Fqdn": env["SAFETYAMP_FQDN"]},
            timeout=5,
        )
        assert created.status_code in (200, 201)
        requests.delete(
            f"{sandbox.urls['samsara']}/__sandbox/vehicles/{VEHICLE['id']}", timeout=5
        ).raise_for_status()
        first_ca = Path(env["SAFETYAMP_CA_BUNDLE"]).read_bytes()

    with start_sandbox(run) as again:
        assert [t["name"] for t in again.safetyamp.state()["user_titles"]] == ["Welder", "Foreman"]
        assert again.samsara.state()["vehicles"] == []
        assert Path(again.env["SAFETYAMP_CA_BUNDLE"]).read_bytes() == first_ca


def test_safetyamp_rate_limit_can_be_switched_off(tmp_path: Path) -> None:
    headers = {"Authorization": "Bearer sandbox-safetyamp-token", "Fqdn": "sandbox.safetyamp.test"}
    with start_sandbox(tmp_path / "limited", rate_limit=2) as sandbox:
        statuses = [
            requests.get(sandbox.urls["safetyamp"] + "/api/roles", headers=headers, timeout=5).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
    with start_sandbox(tmp_path / "free", rate_limit=0) as sandbox, requests.Session() as session:
        statuses = [
            session.get(sandbox.urls["safetyamp"] + "/api/roles", headers=headers, timeout=5).status_code
            for _ in range(70)
        ]
        assert set(statuses) == {200}


def test_env_file_round_trip_with_awkward_values(tmp_path: Path) -> None:
    env = {"PLAIN": "sqlite:////tmp/x.db", "SPACED": "/tmp/with space/ca.pem", "QUOTE": "it's"}
    path = tmp_path / "sandbox.env"
    path.write_text(format_env(env) + 'export EXTRA="double quoted"\n\n# comment\n')
    assert load_env_file(path) == {**env, "EXTRA": "double quoted"}
    path.write_text("NOT A LINE\n")
    with pytest.raises(ValueError, match="line 1"):
        load_env_file(path)


def test_requested_ports_are_used_and_a_busy_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with start_sandbox(tmp_path / "a", ports={"graph": free_port}) as sandbox:
        assert sandbox.urls["graph"] == f"https://127.0.0.1:{free_port}"
        busy = sandbox.urls["samsara"].rsplit(":", 1)[1]
        with pytest.raises(OSError, match=f"samsara emulator cannot listen on 127.0.0.1:{busy}"):
            start_sandbox(tmp_path / "b", ports={"samsara": int(busy)})
