"""Issue 20.4: ledger and failure rows export to CSV through pandas, byte for byte what
`--format csv` prints today, so switching the CLI to it changes nothing an operator sees."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from safetyamp_pipeline.operator.export import csv_export
from safetyamp_pipeline.operator.pii import Masker
from safetyamp_pipeline.operator.reports import FAILURE_COLUMNS, LEDGER_FULL_COLUMNS


def to_csv(rows, columns):  # the stdlib csv writer the CLI used before pandas: the format to keep
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        out = []
        for col in columns:
            value = row.get(col)
            if value is None:
                out.append("")
            elif isinstance(value, datetime | date):
                out.append(value.isoformat())
            elif isinstance(value, Mapping | list | tuple):
                out.append(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime | date) else str(v),
                                      ensure_ascii=False, sort_keys=True))
            else:
                out.append(str(value))
        writer.writerow(out)
    return buffer.getvalue().rstrip("\n")


EMAIL = "jane.doe@example.com"

LEDGER = [
    {
        "id": 7, "at": datetime(2026, 12, 5, 6, 1, 2, tzinfo=UTC), "run_id": "run-1", "entity": "users", "key": "1042",
        "action": "update", "status": "ok", "http_status": 200, "changed_fields": ["email", "city"],
        "before": {"email": "old@example.com", "city": "Baton Rouge, LA"}, "after": {"email": EMAIL, "city": 'Say "hi"\nthere'},
        "error": None,
    },
    {
        "id": 8, "at": datetime(2026, 12, 5, 6, 2, tzinfo=UTC), "run_id": "run-1", "entity": "sites", "key": "12345.",
        "action": "create", "status": "failed", "http_status": 422, "changed_fields": [], "before": None,
        "after": {"name": "Plant Ü"}, "error": "name: has already been taken",
    },
]
FAILURES = [
    {
        "entity": "users", "key": "1042", "kind": "write", "reason": "HTTP 422", "fields": {"email": EMAIL},
        "attempts": 3, "first_seen": datetime(2026, 12, 1, tzinfo=UTC), "last_seen": datetime(2026, 12, 5, tzinfo=UTC),
        "retry_requested": False, "dismissed": False, "desired_hash": "ab12",
    },
]


def _masked_ledger() -> list[dict]:
    masker = Masker(show_pii=False)  # as render_ledger masks before rendering
    return [{**r, "before": masker.data(r.get("before"), r.get("entity")), "after": masker.data(r.get("after"), r.get("entity")),
             "error": masker.text(r.get("error")) or None} for r in LEDGER]


def test_ledger_csv_parses_back_to_the_rows() -> None:
    text = csv_export(LEDGER, LEDGER_FULL_COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [list(p) for p in parsed] == [LEDGER_FULL_COLUMNS] * 2
    first, second = parsed
    assert first["at"] == "2026-12-05T06:01:02+00:00" and first["http_status"] == "200"
    assert json.loads(first["after"]) == LEDGER[0]["after"]  # commas, quotes and newlines survive
    assert json.loads(first["changed_fields"]) == ["email", "city"]
    assert first["error"] == "" and second["before"] == ""  # None is an empty cell, not "None" or "nan"
    assert json.loads(second["after"]) == {"name": "Plant Ü"}


def test_output_is_what_format_csv_prints_today() -> None:
    masked = _masked_ledger()
    assert csv_export(masked, LEDGER_FULL_COLUMNS) == to_csv(masked, LEDGER_FULL_COLUMNS)
    columns = [*FAILURE_COLUMNS, "dismissed", "desired_hash"]
    assert csv_export(FAILURES, columns) == to_csv(FAILURES, columns)
    assert csv_export([], columns) == to_csv([], columns) == ",".join(columns)
    # A lone empty cell is quoted, so the row is not read as a blank line.
    assert csv_export([{"key": None}, {"key": "x"}], ["key"]) == to_csv([{"key": None}, {"key": "x"}], ["key"]) == 'key\n""\nx'


def test_masked_rows_stay_masked_and_only_named_columns_are_written(tmp_path: Path) -> None:
    rows = [{**r, "secret_extra": "not exported"} for r in _masked_ledger()]
    target = tmp_path / "ledger.csv"
    text = csv_export(rows, LEDGER_FULL_COLUMNS, path=target)
    assert EMAIL not in text and "old@example.com" not in text
    assert "not exported" not in text
    assert target.read_text(encoding="utf-8") == text + "\n"
    assert next(csv.reader(io.StringIO(text))) == LEDGER_FULL_COLUMNS


def test_dates_without_time_and_missing_keys() -> None:
    text = csv_export([{"day": date(2026, 1, 2)}], ["day", "absent"])
    assert text == "day,absent\n2026-01-02,"
