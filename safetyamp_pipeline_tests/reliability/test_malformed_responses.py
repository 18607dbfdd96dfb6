"""Malformed answers from each API (HTML error pages, truncated JSON, a missing `data`, wrong types)
make the whole run fail with a clear message naming the service, never a crash deep inside or a
silent empty result that would retire vehicles or erase e-mails. The clients' own tests cover the
parsing; these drive the assets through a tiny server that answers every API route badly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from safetyamp_pipeline.sandbox.server import ServerThread
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun
from safetyamp_pipeline_tests.reliability.helpers import start, stop

BAD_BODIES = {
    "html_error_page": ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "truncated_json": ('{"data": [{"id": 1, "name": "x"', "application/json"),
    "missing_data": ('{"items": [], "message": "ok"}', "application/json"),
    "wrong_type": ('{"data": "not a list", "value": 7, "vehicles": 3}', "application/json"),
}


class BadApi:
    """Answers 200 with one bad body on every path (the same origin can stand in for any API)."""

    def __init__(self) -> None:
        self.body, self.media_type = BAD_BODIES["html_error_page"]
        self.hits = 0

        async def anything(request: Request) -> Response:
            self.hits += 1
            return Response(self.body, status_code=200, media_type=self.media_type)

        app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PATCH", "PUT"])])
        self.server = ServerThread(app).start()

    def serve(self, kind: str) -> None:
        self.body, self.media_type = BAD_BODIES[kind]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxRun, BadApi]]:
    run = start(tmp_path_factory.mktemp("malformed"), employees=80, seed=31)
    bad = BadApi()
    try:
        first = run.sync()
        assert first.success, first.failure
        yield run, bad
    finally:
        bad.server.stop()
        stop(run)


SERVICES = {
    # env variable pointed at the bad server, the step that must fail, words the message must hold
    "safetyamp": ("SAFETYAMP_API_URL", "safetyamp__", "SafetyAmp"),
    "samsara": ("SAMSARA_API_URL", "samsara__vehicles", "Samsara"),
    "graph": ("MS_GRAPH_API_URL", "entra__users", "Graph"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_malformed_answer_fails_the_run_clearly_and_harms_nothing(setup, service: str, kind: str, tmp_path: Path) -> None:
    run, bad = setup
    variable, step, name = SERVICES[service]
    bad.serve(kind)
    before = run.state()
    hits = bad.hits
    env = {**run.env, variable: bad.server.url}
    from safetyamp_pipeline.sync.headless import run_job

    outcome = run_job(env, tags={"safetyamp/full_read": "true"}, instance=run.instance)
    assert bad.hits > hits, "the bad server was never asked"
    assert not outcome.success
    failure = outcome.failure or ""
    assert step in failure, failure
    assert name in failure, failure
    assert any(word in failure.lower() for word in ("malformed", "json", "data", "not a list", "unexpected", "invalid")), failure
    assert "Traceback" not in failure
    # SafetyAmp is exactly as before: nothing written, nothing retired, no e-mail erased.
    assert run.state() == before
    assert not [e for e in run.store.ledger_query(run_id=outcome.run_id) if e["status"] == "ok"]
    if service == "safetyamp":
        # The mirror was not replaced by an empty read.
        assert len(run.store.mirror_records("users")) == len(before["users"])
