"""No secret in any log line, Dagster event, metadata entry, ledger row or CLI output, for a good
sync and for failing ones; no full e-mail, phone or birth date in Dagster metadata or logs; a wrong
SafetyAmp token fails the run naming SAFETYAMP_TOKEN but not its value."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from dagster._serdes import serialize_value

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun
from safetyamp_pipeline_tests.reliability.helpers import REPO, report, start, stop

SECRET_NAMES = ("SAFETYAMP_TOKEN", "SAMSARA_API_TOKEN", "MS_GRAPH_CLIENT_SECRET")
# Set for the run although the SQLite sandbox never uses it: a leak of any env value shows up.
SQL_PASSWORD = "Sql-Pa55word-never-logged"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRun]:
    run = start(tmp_path_factory.mktemp("secrets"), employees=80, seed=19)
    run.env["SQL_PASSWORD"] = SQL_PASSWORD
    try:
        yield run
    finally:
        stop(run)


def _captured_sync(run: SandboxRun, env_override: dict | None = None, **kwargs) -> tuple[object, list[str]]:
    from safetyamp_pipeline.sync.headless import run_job

    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        outcome = run_job({**run.env, **(env_override or {})}, instance=run.instance, **kwargs)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    return outcome, capture.lines


def _dagster_texts(run: SandboxRun, run_id: str) -> list[str]:
    """Every event of the run as Dagster stores it (messages, metadata, errors, check results)."""
    return [serialize_value(entry) for entry in run.instance.all_logs(run_id)]


def _cli(run: SandboxRun, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "safetyamp_pipeline.cli", *args],
        cwd=REPO, env={**run.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    return result.stdout + result.stderr


def _secrets(run: SandboxRun, extra: tuple[str, ...] = ()) -> list[str]:
    return [run.env[name] for name in SECRET_NAMES] + [SQL_PASSWORD, *extra]


def _person_data(run: SandboxRun) -> list[str]:
    """Full e-mails, phones and birth dates of the data set, in the forms they take along the way."""
    values: set[str] = set()
    with run.vista() as db:
        for email, phone, cell, birth in db.execute("SELECT Email, Phone, CellPhone, BirthDate FROM bPREH"):
            values.update(v.strip() for v in (email, phone, cell) if isinstance(v, str) and len(v.strip()) >= 7)
            if birth:
                values.add(str(birth)[:10])
    for user in run.state("graph")["users"]:
        values.update(v for v in (user.get("mail"), user.get("userPrincipalName")) if v)
    for user in run.state()["users"]:
        values.update(v for v in (user.get("email"), user.get("mobile_phone"), user.get("work_phone"), user.get("date_of_birth")) if v)
    # A birth date equal to some other date of the run (hire date, partition key) would be a false alarm.
    return sorted(v for v in values if not re.fullmatch(r"20\d\d-\d\d-\d\d", v))


def _leaks(texts: list[str], needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for needle in needles:
        hits = [t[max(0, t.find(needle) - 80): t.find(needle) + 80] for t in texts if needle in t]
        if hits:
            found[needle] = hits[:2]
    return found


def test_a_good_and_a_failing_sync_leak_no_secret_and_no_person_data(sandbox: SandboxRun) -> None:
    run = sandbox
    good, good_logs = _captured_sync(run)
    assert good.success, good.failure
    run.set_faults(error_rate=1.0, error_statuses=[500, 503])
    try:
        bad, bad_logs = _captured_sync(run, tags={"safetyamp/full_read": "true"})
    finally:
        run.set_faults()
    assert not bad.success

    dagster_texts = _dagster_texts(run, good.run_id) + _dagster_texts(run, bad.run_id)
    ledger = [json.dumps(e, default=str) for e in run.store.ledger_query()]
    failures = [json.dumps(f, default=str) for f in run.store.failures_open()]
    cli = [_cli(run, "ledger", "--limit", "500"), _cli(run, "ledger", "--format", "json", "--limit", "500"),
           _cli(run, "failures"), _cli(run, "failures", "--format", "json")]
    logs = good_logs + bad_logs
    assert len(dagster_texts) > 100 and len(logs) > 20 and ledger

    everything = dagster_texts + logs + ledger + failures + cli + [good.failure or "", bad.failure or ""]
    assert not _leaks(everything, _secrets(run)), _leaks(everything, _secrets(run))

    person_data = _person_data(run)
    assert len(person_data) > 100
    shown = dagster_texts + logs + cli + [bad.failure or ""]
    leaks = _leaks(shown, person_data)
    assert not leaks, f"{len(leaks)} person values unmasked, e.g. {list(leaks.items())[:3]}"
    report("secrets_and_pii", {"dagster_events": len(dagster_texts), "log_lines": len(logs), "ledger_rows": len(ledger),
                               "cli_outputs": len(cli), "secrets": len(_secrets(run)), "person_values": len(person_data)})


def test_a_wrong_token_is_refused_and_named_but_not_shown(sandbox: SandboxRun) -> None:
    run = sandbox
    wrong = "wrong-token-Zq81-do-not-print"
    outcome, logs = _captured_sync(run, env_override={"SAFETYAMP_TOKEN": wrong}, tags={"safetyamp/full_read": "true"})
    assert not outcome.success
    assert "SAFETYAMP_TOKEN" in (outcome.failure or ""), outcome.failure
    assert "401" in outcome.failure or "unauthorized" in outcome.failure.lower()
    texts = _dagster_texts(run, outcome.run_id) + logs + [outcome.failure]
    assert not _leaks(texts, [wrong, *_secrets(run)])
    # No record was held as rejected because of the credentials.
    assert not [f for f in run.store.failures_open() if "401" in (f.get("reason") or "")]
