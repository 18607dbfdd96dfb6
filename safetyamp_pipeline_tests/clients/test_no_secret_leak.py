"""No token, client secret or personal value reaches a log line or an exception text.

The clients run through their failure paths (429, 5xx, dropped connections, 401, 422, token
errors, dry run) against the emulators with known secret values while every log record of every
logger (ours, urllib3, MSAL) is captured at DEBUG.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
import requests

from safetyamp_pipeline.clients.errors import ApiError
from safetyamp_pipeline.clients.graph import GraphClient
from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient
from safetyamp_pipeline.clients.samsara import SamsaraClient
from safetyamp_pipeline.sandbox.certs import ensure_certs
from safetyamp_pipeline.sandbox.graph_emulator import GraphEmulator
from safetyamp_pipeline.sandbox.safetyamp_emulator import SafetyAmpEmulator
from safetyamp_pipeline.sandbox.samsara_emulator import SamsaraEmulator
from safetyamp_pipeline.sandbox.server import ServerThread

SAFETYAMP_TOKEN = "SA-SECRET-TOKEN-5b8e0c"
WRONG_SAFETYAMP_TOKEN = "SA-WRONG-TOKEN-a1f4"
SAMSARA_TOKEN = "SAMSARA-SECRET-TOKEN-77c1"
WRONG_SAMSARA_TOKEN = "SAMSARA-WRONG-TOKEN-9e02"
GRAPH_SECRET = "GRAPH-CLIENT-SECRET-3~kQ"
WRONG_GRAPH_SECRET = "GRAPH-WRONG-SECRET-0xP"
TENANT = "11111111-2222-4333-8444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
PERSON_EMAIL = "jane.private@example.test"
PERSON_PHONE = "+12255550147"

SECRETS = [
    SAFETYAMP_TOKEN, WRONG_SAFETYAMP_TOKEN, SAMSARA_TOKEN, WRONG_SAMSARA_TOKEN,
    GRAPH_SECRET, WRONG_GRAPH_SECRET,
]


class Sleepless:
    def __call__(self, seconds: float) -> None:
        pass


class Transcript:
    """Every text a client run produced: log records (all loggers) and exception texts."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.exception_texts: list[str] = []
        self.errors = 0

    def expect_error(self, call: Any) -> None:
        try:
            call()
        except ApiError as exc:
            self.errors += 1
            self.exception_texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        else:
            raise AssertionError("the call was expected to fail")

    def log_texts(self) -> list[str]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [formatter.format(record) for record in self.caplog.records]

    def leaks(self, values: list[str]) -> list[tuple[str, str]]:
        texts = self.exception_texts + self.log_texts()
        assert len(texts) > 10, "nothing was captured: the check would be vacuous"
        return [(value, text[:300]) for text in texts for value in values if value in text]


@pytest.fixture
def transcript(caplog: pytest.LogCaptureFixture) -> Transcript:
    caplog.set_level(logging.DEBUG)
    return Transcript(caplog)


def _faults(url: str, verify: Any = True, **config: Any) -> None:
    requests.post(url + "/__sandbox/faults", json=config, timeout=5, verify=verify).raise_for_status()


def test_safetyamp_failure_paths_leak_no_token_and_no_personal_value(
    tmp_path: Path, transcript: Transcript, caplog: pytest.LogCaptureFixture
) -> None:
    fixture = tmp_path / "fixture.json"
    fixture.write_text(
        '{"users": [{"first_name": "A", "last_name": "B", "email": "taken@example.test"}],'
        ' "user_titles": [{"id": 1, "name": "Welder"}]}'
    )
    emulator = SafetyAmpEmulator(tmp_path / "state.json", SAFETYAMP_TOKEN, "t.test", fixture=fixture)
    person = {"first_name": "Jane", "last_name": "Private", "email": PERSON_EMAIL, "mobile_phone": PERSON_PHONE}
    with ServerThread(emulator.app) as server:
        url = server.url
        sa = SafetyAmpClient(url, SAFETYAMP_TOKEN, "t.test", sleep=Sleepless(), max_retries=2)
        _faults(url, burst_429=1)
        sa.list("users")
        _faults(url, error_rate=1.0, error_statuses=[502])
        transcript.expect_error(lambda: sa.list("users"))
        transcript.expect_error(lambda: sa.create("users", person))  # 502 on a POST: ambiguous
        _faults(url, drop_rate=1.0)
        transcript.expect_error(lambda: sa.update("users", "abcde", person))
        transcript.expect_error(lambda: sa.create("users", person))
        _faults(url)
        transcript.expect_error(lambda: sa.create("users", {**person, "email": "taken@example.test"}))
        sa.create("users", person)
        SafetyAmpClient(url, SAFETYAMP_TOKEN, "t.test", dry_run=True).create("users", person)
        transcript.expect_error(lambda: SafetyAmpClient(url, WRONG_SAFETYAMP_TOKEN, "t.test").list("users"))
    assert transcript.errors == 6
    assert any("waiting" in r.getMessage() for r in caplog.records)  # the retries were logged
    assert any("email" in r.getMessage() for r in caplog.records)  # field names are logged ...
    assert transcript.leaks(SECRETS + [PERSON_EMAIL, PERSON_PHONE]) == []  # ... their values never


def test_samsara_failure_paths_leak_no_token(tmp_path: Path, transcript: Transcript, caplog: pytest.LogCaptureFixture) -> None:
    emulator = SamsaraEmulator(tmp_path / "samsara.json", SAMSARA_TOKEN, fixture={"vehicles": [], "drivers": []})
    with ServerThread(emulator.app) as server:
        url = server.url
        samsara = SamsaraClient(url, SAMSARA_TOKEN, sleep=Sleepless(), max_retries=1)
        _faults(url, burst_429=1)
        samsara.list_vehicles()
        _faults(url, error_rate=1.0)
        transcript.expect_error(samsara.list_vehicles)
        _faults(url, drop_rate=1.0)
        transcript.expect_error(lambda: samsara.get_driver("1"))
        _faults(url)
        transcript.expect_error(SamsaraClient(url, WRONG_SAMSARA_TOKEN).list_vehicles)
    assert transcript.errors == 3
    assert transcript.leaks(SECRETS) == []


def test_graph_token_flow_and_failures_leak_no_secret_or_access_token(
    tmp_path: Path, transcript: Transcript, caplog: pytest.LogCaptureFixture
) -> None:
    certs = ensure_certs(tmp_path / "certs")
    emulator = GraphEmulator(
        tmp_path / "graph.json", TENANT, CLIENT_ID, GRAPH_SECRET,
        fixture={"users": [{"id": "u1", "employeeId": "1001", "mail": "u1@contoso.test",
                            "userPrincipalName": "u1@contoso.test", "accountEnabled": True}]},
    )
    server = ServerThread(emulator.app, ssl_certfile=str(certs.cert_path), ssl_keyfile=str(certs.key_path))
    with server:
        url = server.url
        ca = str(certs.ca_path)
        graph = GraphClient(TENANT, CLIENT_ID, GRAPH_SECRET, authority_host=url, graph_url=url,
                            ca_bundle=ca, sleep=Sleepless(), max_retries=1)
        assert len(graph.list_users()) == 1
        access_token = graph.access_token()
        _faults(url, verify=ca, burst_429=1)
        graph.list_users()
        _faults(url, verify=ca, error_rate=1.0)
        transcript.expect_error(graph.list_users)
        _faults(url, verify=ca)
        transcript.expect_error(
            GraphClient(TENANT, CLIENT_ID, WRONG_GRAPH_SECRET, authority_host=url, graph_url=url, ca_bundle=ca).list_users
        )
    assert transcript.errors == 2
    assert len(access_token) > 20
    assert transcript.leaks(SECRETS + [access_token]) == []
