"""Plain-text tables and CSV/JSON renderings for terminal output."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

MAX_CELL = 80


def cell(value: Any, max_len: int = MAX_CELL) -> str:
    """One value as a single-line table cell."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    text = " ".join(text.split()) if ("\n" in text or "\t" in text) else text
    if max_len and len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return text


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
                 max_cell: int = MAX_CELL) -> str:
    """Rows aligned under a header line and a dashed rule. Numbers are right-aligned."""
    headers = list(headers or columns)
    cells = [[cell(row.get(col), max_cell) for col in columns] for row in rows]
    numeric = [all(isinstance(row.get(col), int | float) and not isinstance(row.get(col), bool)
                   for row in rows if row.get(col) is not None) and any(row.get(col) is not None for row in rows)
               for col in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def format_pairs(pairs: Iterable[tuple[str, Any]], indent: int = 2, max_cell: int = 100) -> str:
    """``name  value`` lines, names aligned."""
    items = [(name, cell(value, max_cell)) for name, value in pairs]
    if not items:
        return " " * indent + "(none)"
    width = max(len(name) for name, _ in items)
    return "\n".join((" " * indent + name.ljust(width) + "  " + value).rstrip() for name, value in items)


def indent(text: str, by: int = 2) -> str:
    return "\n".join((" " * by + line) if line else line for line in text.splitlines())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), default=_json_default, ensure_ascii=False, indent=2)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header; nested values JSON-encoded, datetimes ISO 8601."""
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
                out.append(json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True))
            else:
                out.append(str(value))
        writer.writerow(out)
    return buffer.getvalue().rstrip("\n")
