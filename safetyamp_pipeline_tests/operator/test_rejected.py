"""`safetyamp-pipeline rejected`: each record the last run did not send, the field at fault, why."""

from __future__ import annotations

import csv
import io
import json

from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.masking import mask_text


def test_lists_the_last_runs_rejections_with_their_field(pipeline, synced):
    duplicates = set(synced.cases["duplicate_email"])
    result = pipeline("rejected", "--entity", "employee", "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert rows and all(r["entity"] == "users" and r["run_id"] for r in rows)
    by_key = {r["key"]: r for r in rows}
    held = duplicates & set(by_key)
    assert held, (duplicates, sorted(by_key)[:10])
    assert all(by_key[k]["fields"] == ["email"] and "field email" in by_key[k]["reason"] for k in held)
    # Every rejected desired employee is listed, not a sample.
    expected = {r.key for r in synced.desired("desired/users") if r.rejected}
    assert expected <= set(by_key)


def test_the_sink_metadata_shows_the_same_rows(pipeline, synced):
    rows = json.loads(pipeline("rejected", "--format", "json").out)
    for entity, sink in synced.first.sinks.items():
        table = sink["rejected"]
        # Dagster metadata also masks phone-like digit runs (a Samsara id in a key looks like one).
        listed = {(mask_text(r["key"]), mask_text(r["reason"])) for r in rows if r["entity"] == entity}
        shown = {(rec.data["key"], rec.data["reason"]) for rec in table.records}
        assert shown <= listed and len(shown) == min(50, len(listed)), entity
        fields = {mask_text(r["key"]): ", ".join(r["fields"]) for r in rows if r["entity"] == entity}
        assert all(rec.data["fields"] == fields[rec.data["key"]] for rec in table.records)


def test_table_and_csv_forms(pipeline, synced):
    table = pipeline("rejected", "--entity", "users")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split()[:4] == ["entity", "key", "fields", "reason"]
    assert "not sent by the last run" in lines[-1]
    parsed = list(csv.DictReader(io.StringIO(pipeline("rejected", "--format", "csv").out)))
    assert parsed and set(parsed[0]) == {"entity", "key", "fields", "reason", "run_id", "at"}


def test_reasons_are_masked_unless_show_pii(pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SyncStore(url)
    store.rejections_replace("users", "run-1", [
        {"key": "00007", "reason": "employee 7: field email jane.doe@example.com is not valid", "fields": ["email"]}
    ])
    store.rejections_replace("sites", "run-1", [])
    masked = pipeline("rejected", store_url=url)
    assert "j***@example.com" in masked.out and "jane.doe@example.com" not in masked.out
    assert "jane.doe@example.com" in pipeline("rejected", "--show-pii", store_url=url).out
    assert pipeline("rejected", "--entity", "sites", store_url=url).out.strip() == "No record was held back by the last run of sites."


def test_a_new_run_replaces_the_entitys_rows(tmp_path):
    store = SyncStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.rejections_replace("users", "run-1", [{"key": "1", "reason": "field email"}, {"key": "2", "reason": "field zip_code"}])
    store.rejections_replace("sites", "run-1", [{"key": "100.", "reason": "field Department"}])
    store.rejections_replace("users", "run-2", [{"key": "2", "reason": "field zip_code", "fields": ["zip_code"]}])
    assert [(r["entity"], r["key"], r["run_id"]) for r in store.rejections_last()] == [
        ("sites", "100.", "run-1"), ("users", "2", "run-2")]


def test_the_desired_check_shows_the_same_rows(pipeline, synced):
    rows = json.loads(pipeline("rejected", "--entity", "users", "--format", "json").out)
    listed = {mask_text(r["key"]): (", ".join(r["fields"]), mask_text(r["reason"])) for r in rows}
    checks = [e.dagster_event.event_specific_data for e in synced.run.instance.all_logs(synced.first.run_id)
              if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"]
    check = next(c for c in checks if c.asset_key.path == ["desired", "users"] and c.check_name == "rejected_before_send")
    shown = {r.data["key"]: (r.data["fields"], r.data["reason"]) for r in check.metadata["rejected"].records}
    assert shown and all(listed[key] == value for key, value in shown.items())
