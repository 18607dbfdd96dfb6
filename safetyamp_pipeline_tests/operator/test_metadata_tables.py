"""Sink and check metadata are sortable UI tables (``MetadataValue.table`` with a schema), masked."""

from __future__ import annotations

import dagster as dg

from safetyamp_pipeline.defs.safetyamp.sinks import CHANGE_COLUMNS, FAILURE_COLUMNS, REJECTION_COLUMNS
from safetyamp_pipeline.sync.metadata import metadata_table


def _columns(value: dg.TableMetadataValue) -> list[str]:
    return [c.name for c in value.schema.columns]


def _cells(value: dg.TableMetadataValue) -> list[str]:
    return [str(v) for record in value.records for v in record.data.values()]


def test_sink_metadata_tables_have_their_columns(synced):
    users = synced.first.sinks["users"]
    for name, columns in (("changes", CHANGE_COLUMNS), ("failures", FAILURE_COLUMNS), ("rejected", REJECTION_COLUMNS)):
        assert isinstance(users[name], dg.TableMetadataValue), name
        assert _columns(users[name]) == list(columns), name
    changes = users["changes"].records
    assert len(changes) == min(50, users["created"] + users["updated"] + users["deactivated"])
    assert {r.data["action"] for r in changes} <= {"create", "update", "deactivate"}
    assert all(isinstance(r.data["key"], str) and r.data["status"] == "ok" for r in changes)


def test_rejected_rows_name_the_field_and_hide_the_email(synced):
    duplicates = set(synced.cases["duplicate_email"])
    rejected = synced.first.sinks["users"]["rejected"]
    rows = {r.data["key"]: r.data["reason"] for r in rejected.records}
    dup_rows = {k: v for k, v in rows.items() if k in duplicates}
    assert dup_rows, rows
    assert all("field email" in reason for reason in dup_rows.values())
    emails = {str(u.get("email")) for u in synced.run.state("safetyamp")["users"] if u.get("email")}
    for sink in synced.first.sinks.values():
        for value in sink.values():
            if isinstance(value, dg.TableMetadataValue):
                cells = _cells(value)
                assert not [c for c in cells if any(e in c for e in emails)]


def test_metadata_table_masks_person_data_and_keeps_types():
    table = metadata_table(
        [{"key": "00042", "email": "jane.doe@example.com", "mobile_phone": "+13375550142", "attempts": 3,
          "error": "taken by jane.doe@example.com"}]
    )
    assert table.records[0].data == {
        "key": "00042", "email": "j***@example.com", "mobile_phone": "***42", "attempts": 3,
        "error": "taken by j***@example.com",
    }
    assert [(c.name, c.type) for c in table.schema.columns] == [
        ("key", "string"), ("email", "string"), ("mobile_phone", "string"), ("attempts", "int"), ("error", "string"),
    ]
    empty = metadata_table([], ["key", "reason"])
    assert empty.records == [] and _columns(empty) == ["key", "reason"]
