"""The failed queue: a real 422 is recorded, held on the next run, re-sent after `failures retry`."""

from __future__ import annotations

import json

import pytest

USER_PATCH = "PATCH /api/users/{id}"


def _vista_email_employee(synced) -> tuple[str, dict]:
    """An active employee whose e-mail comes from Vista and who is already in SafetyAmp."""
    mirror = synced.run.store.mirror_records("users")
    for record in synced.desired("desired/users"):
        if not record.rejected and not record.deactivate and record.key in mirror and record.provenance.get("email") == "Vista bPREH.Email":
            return record.key, mirror[record.key]
    raise AssertionError("no synced employee with a Vista e-mail")


def _patches(synced) -> int:
    return synced.run.requests("safetyamp")["by_route"].get(USER_PATCH, 0)


def _employee_sync(synced) -> None:
    synced.run.reset_requests()
    outcome = synced.run.sync(job="safetyamp_employee_sync")
    assert outcome.success, outcome.failure


@pytest.fixture(scope="module")
def rejected_by_server(synced):
    """Employee E's Vista e-mail is changed to one that a hand-made SafetyAmp user already holds
    (unknown to the mirror), so the sync's PATCH gets a 422 "already been taken"."""
    key, user = _vista_email_employee(synced)
    taken = f"held.by.hand.{key}@iandi-co.example"
    response = synced.run.safetyamp("POST", "/api/users", json={"first_name": "Hand", "last_name": "Made", "email": taken})
    assert response.status_code in (200, 201), response.text
    with synced.run.vista() as db:
        db.execute("UPDATE bPREH SET Email = ? WHERE Employee = ?", (taken, int(key)))
    _employee_sync(synced)
    return key, user, taken


def test_a_422_is_listed_with_its_field_and_masked(pipeline, synced, rejected_by_server):
    key, _, taken = rejected_by_server
    assert _patches(synced) == 1
    result = pipeline("failures", "--entity", "users")
    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if line.startswith(f"users   {key} ") or line.split()[:2] == ["users", key])
    assert "rejected" in line and "email: The email has already been taken." in line
    assert taken not in result.out
    assert "1 open failure" in result.out
    listed = json.loads(pipeline("failures", "--format", "json").out)
    assert [(f["entity"], f["key"], f["kind"], f["attempts"]) for f in listed] == [("users", key, "rejected", 1)]
    assert listed[0]["fields"] == {"email": ["The email has already been taken."]}


def test_a_rejected_record_is_held_then_retried_on_request(pipeline, synced, rejected_by_server):
    key, user, _ = rejected_by_server
    _employee_sync(synced)
    assert _patches(synced) == 0, "an unchanged rejected record must not be re-sent"
    explained = pipeline("explain", "employee", key).out
    assert "HELD" in explained and f"failures retry {key}" in explained

    result = pipeline("failures", "retry", key)
    assert (result.code, result.out.strip()) == (0, f"users {key}: marked for re-send on the next run")
    assert "retry requested" in pipeline("explain", "employee", key).out

    _employee_sync(synced)
    assert _patches(synced) == 1, "the retried record is sent again"
    failure = synced.run.store.failure_get("users", key)
    assert failure["attempts"] == 2 and not failure["retry_requested"]
    history = json.loads(pipeline("ledger", "--entity", "users", "--key", key, "--status", "failed", "--format", "json").out)
    assert [entry["http_status"] for entry in history] == [422, 422]
    assert {entry["key"] for entry in history} == {key}


def test_dismiss_hides_a_failure_and_unknown_keys_are_not_found(pipeline, synced, rejected_by_server):
    key = rejected_by_server[0]
    assert pipeline("failures", "retry", "424242").code == 1
    assert pipeline("failures", "dismiss", "424242", "--entity", "users").code == 1
    result = pipeline("failures", "dismiss", key.zfill(6), "--entity", "employee")
    assert result.code == 0, result.err
    assert f"users {key}: dismissed" in result.out
    assert key not in pipeline("failures").out.split()
    assert pipeline("failures", "retry", "--all", "--entity", "users").code == 1  # nothing open any more
