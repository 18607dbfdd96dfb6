"""The sink engine against a hand-kept tenant (issue 15.5): a create refused as a duplicate is
healed with one re-read of the entity per run, and a refusal the re-plan cannot fix is a failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient
from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, synced_sandbox

CLONE_BASE = 900_000


@pytest.fixture
def synced(tmp_path: Path) -> Iterator[SandboxRun]:
    with synced_sandbox(tmp_path) as run:
        yield run


def clone_employees(run: SandboxRun, n: int) -> list[dict]:
    """Add ``n`` new active Vista employees, copies of synced ones with their own number and
    e-mail (and no phone, so that no phone is shared). Returns their number, e-mail and names."""
    users = {u["emp_id"]: u for u in run.state()["users"] if u.get("emp_id") and u.get("system_access")}
    clones = []
    with run.vista() as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(bPREH)")]
        rows = db.execute("SELECT * FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL ORDER BY Employee").fetchall()
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            if str(record["Employee"]) not in users or not record.get("FirstName") or not record.get("LastName"):
                continue
            number = CLONE_BASE + len(clones)
            record.update(Employee=number, Email=f"clone.{number}@example.test", Phone=None, CellPhone=None)
            db.execute(
                f"INSERT INTO bPREH ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [record[c] for c in columns],
            )
            clones.append({"emp_id": str(number), "email": record["Email"], "first_name": record["FirstName"].strip(),
                           "last_name": record["LastName"].strip()})
            if len(clones) == n:
                break
    assert len(clones) == n
    return clones


def one_full_read_of_users(run: SandboxRun) -> int:
    """GET /api/users requests one full read costs a new client (as each sink step has)."""
    run.reset_requests()
    with SafetyAmpClient(run.env["SAFETYAMP_API_URL"], run.env["SAFETYAMP_TOKEN"], run.env["SAFETYAMP_FQDN"]) as client:
        client.session.verify = run.env.get("SAFETYAMP_CA_BUNDLE") or True
        client.list("users")
    return run.requests()["by_route"]["GET /api/users"]


def test_twenty_duplicate_creates_cost_one_re_read_of_users(synced: SandboxRun) -> None:
    run = synced
    clones = clone_employees(run, 24)  # a few copy source data the plan rejects; 20 or more conflict
    # Someone creates the 20 users in SafetyAmp by hand after the last read: the mirror does not
    # know them, so the sync plans creates and SafetyAmp refuses each e-mail as taken.
    for clone in clones:
        answer = run.safetyamp("POST", "/api/users", json=clone)
        assert answer.status_code == 201, answer.text
    one_read = one_full_read_of_users(run)
    run.reset_requests()
    outcome = run.sync()
    assert outcome.success, outcome.failure
    routes = run.requests()["by_route"]
    conflicts = routes.get("POST /api/users", 0)
    assert conflicts >= 20, routes
    assert routes["GET /api/users"] == one_read, routes
    users = outcome.sinks["users"]
    assert users["healed"] == conflicts and users["failed"] == 0, users
    emp_ids = [u.get("emp_id") for u in run.state()["users"]]
    assert all(emp_ids.count(c["emp_id"]) == 1 for c in clones)


def test_a_duplicate_the_re_plan_rejects_is_recorded_as_a_failure(synced: SandboxRun) -> None:
    run = synced
    (clone,) = clone_employees(run, 1)
    # A hand-made user without an employee number holds the new employee's e-mail.
    answer = run.safetyamp("POST", "/api/users", json={**clone, "emp_id": None})
    assert answer.status_code == 201, answer.text
    outcome = run.sync()
    assert outcome.success, outcome.failure
    users = outcome.sinks["users"]
    assert users["failed"] == 1, users  # the sink's writes_succeeded check is red
    assert users["healed"] == 0
    failures = run.store.failures_open(entity="users")
    assert [f["key"] for f in failures] == [clone["emp_id"]]
    assert "re-read" in failures[0]["reason"]
    ledger = run.store.ledger_query(run_id=outcome.run_id, entity="users", key=clone["emp_id"])
    assert [(r["action"], r["status"], r["http_status"]) for r in ledger] == [("create", "failed", 422)]
    assert clone["email"] not in (failures[0]["reason"] + ledger[0]["error"])  # person data masked
