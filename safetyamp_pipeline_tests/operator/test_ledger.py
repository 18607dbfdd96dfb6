"""`safetyamp-pipeline ledger`: filters and formats against the first sync's real writes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from safetyamp_pipeline.sync.masking import mask_email


def test_entity_filter_returns_exactly_that_sinks_writes(pipeline, synced):
    result = pipeline("ledger", "--entity", "sites", "--run", synced.first.run_id, "--limit", "0", "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert {r["entity"] for r in rows} == {"sites"}
    assert sum(1 for r in rows if r["action"] == "create" and r["status"] == "ok") == synced.first.sinks["sites"]["created"]
    assert len({r["key"] for r in rows}) == len(rows)


def test_run_filter_in_csv_parses_back_and_masks_person_data(pipeline, synced):
    result = pipeline("ledger", "--run", synced.first.run_id, "--limit", "0", "--format", "csv")
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert {r["run_id"] for r in rows} == {synced.first.run_id}
    created = sum(int(sink.get("created", 0)) for sink in synced.first.sinks.values())
    assert sum(1 for r in rows if r["action"] == "create") == created
    users = [r for r in rows if r["entity"] == "users"]
    after = json.loads(users[0]["after"])
    email = synced.run.store.mirror_records("users")[users[0]["key"]]["email"]
    assert after["email"] == mask_email(email)
    assert email not in result.out
    shown = pipeline("ledger", "--run", synced.first.run_id, "--entity", "users", "--key", users[0]["key"],
                     "--format", "csv", "--show-pii").out
    assert json.loads(next(csv.DictReader(io.StringIO(shown)))["after"])["email"] == email


def test_since_filter(pipeline, synced):
    later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    future = pipeline("ledger", "--since", later)
    assert (future.code, future.out.strip()) == (0, "No ledger entries match.")
    recent = json.loads(pipeline("ledger", "--since", "2h", "--limit", "0", "--format", "json").out)
    everything = json.loads(pipeline("ledger", "--limit", "0", "--format", "json").out)
    assert recent and len(recent) == len(everything)
    assert all(datetime.fromisoformat(r["at"]) >= datetime.now(UTC) - timedelta(hours=2) for r in recent)
    assert [r["id"] for r in recent] == sorted((r["id"] for r in recent), reverse=True)  # latest first


def test_table_is_aligned_and_limited(pipeline, synced):
    result = pipeline("ledger", "--run", synced.first.run_id, "--limit", "7")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header, rule, body = lines[0], lines[1], lines[2:9]
    assert header.split()[:4] == ["at", "(UTC)", "run", "entity"]
    assert set(rule.replace(" ", "")) == {"-"}
    column = header.index("entity")
    assert all(line[column:].split()[0] in ("site_clusters", "sites", "user_titles", "users", "assets") for line in body)
    assert lines[-1] == "7 entries"


def test_nothing_matching_a_run_is_not_found(pipeline):
    result = pipeline("ledger", "--run", "00000000-0000-0000-0000-000000000000")
    assert result.code == 1
    assert result.out.strip() == "No ledger entries match."
