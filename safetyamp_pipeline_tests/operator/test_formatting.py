"""Pure helpers of the CLI: time parsing, masking policy, table layout, CSV round trip."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from safetyamp_pipeline.operator.context import OperatorError
from safetyamp_pipeline.operator.export import csv_export
from safetyamp_pipeline.operator.pii import Masker
from safetyamp_pipeline.operator.reports import key_forms, parse_since
from safetyamp_pipeline.operator.tables import format_table

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24H", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00-06:00", datetime(2026, 11, 1, 14, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_since_forms(text, expected):
    assert parse_since(text, now=NOW) == expected


def test_since_rejects_prose():
    with pytest.raises(OperatorError) as error:
        parse_since("yesterday-ish", now=NOW)
    assert error.value.exit_code == 2 and "yesterday-ish" in str(error.value)


def test_person_fields_are_masked_and_site_addresses_are_not():
    masker = Masker(show_pii=False)
    user = {"email": "jane.doe@example.com", "mobile_phone": "+13375550142", "date_of_birth": "1980-02-03",
            "street": "12 Oak St", "city": "Lafayette", "current_hire_date": "2020-01-01",
            "home_site": {"street": "1 Plant Rd"}}
    assert masker.data(user, "users") == {
        "email": "j***@example.com", "mobile_phone": "***42", "date_of_birth": "****-**-**", "street": "***",
        "city": "Lafayette", "current_hire_date": "2020-01-01", "home_site": {"street": "***"},
    }
    assert masker.data({"street": "1 Plant Rd", "city": "Mobile"}, "sites") == {"street": "1 Plant Rd", "city": "Mobile"}
    assert masker.field("CellPhone", "(337) 555-0142", "users") == "***42"
    assert masker.text("field email is already used by a@b.example") == "field email is already used by a***@b.example"
    assert Masker(show_pii=True).data(user, "users") == user


def test_table_aligns_columns_and_right_aligns_numbers():
    text = format_table([{"key": "1", "n": 5}, {"key": "12345.", "n": 120}], ["key", "n"])
    assert text.splitlines() == ["key       n", "------- ---", "1         5", "12345.  120"]


def test_csv_round_trips_nested_values():
    rows = [{"key": "a,b", "after": {"email": "x@y.z"}, "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none": None}]
    parsed = list(csv.DictReader(io.StringIO(csv_export(rows, ["key", "after", "at", "none"]))))
    assert parsed == [{"key": "a,b", "after": '{"email": "x@y.z"}', "at": "2026-01-02T03:04:05+00:00", "none": ""}]


def test_key_forms_cover_what_operators_type():
    assert "123" in key_forms("users", "00123")
    assert "12345." in key_forms("sites", "12345")
    assert "project engineer" in key_forms("user_titles", "Project  ENGINEER")
    assert "ABC-1" in key_forms("assets", "abc-1")


def test_sync_summary_lists_every_sink_and_a_total():
    from safetyamp_pipeline.sync.headless import SyncOutcome, summary_table

    sinks = {"sites": {"created": 12, "updated": 0, "deactivated": 0, "unchanged": 3, "rejected_before_send": 1,
                       "failed": 0, "api_calls": 40, "seconds": 1.234},
             "users": {"created": 100, "updated": 2, "deactivated": 1, "unchanged": 0, "rejected_before_send": 4,
                       "failed": 1, "api_calls": 110, "seconds": 9.0}}
    lines = summary_table(SyncOutcome("run", True, sinks)).splitlines()
    assert lines[0].split() == ["entity", "created", "updated", "deactivated", "unchanged", "rejected", "failed", "API",
                                "calls", "seconds"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["sites"] == ["12", "0", "0", "3", "1", "0", "40", "1.2"]
    assert rows["assets"] == ["-"] * 8
    assert rows["total"] == ["112", "2", "1", "3", "5", "1", "150"]
    assert len({len(line) for line in lines[:3]}) == 1  # numbers right-aligned under their headers
