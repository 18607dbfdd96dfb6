"""Dagster metadata builders: row counts, column schemas, masked previews and record tables.

Tables are ``MetadataValue.table`` with a ``TableSchema`` (the UI sorts and filters them); every
cell passes through the person-data masking first. Markdown is for prose only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import dagster as dg

from safetyamp_pipeline.sync.masking import mask_record, mask_text

PREVIEW_ROWS = 10
TABLE_ROWS = 50
MAX_CELL = 200

# TableColumn types the UI understands; anything else is shown as a string.
_TYPES = {bool: "bool", int: "int", float: "float", str: "string"}


def _type_name(values: Iterable[Any]) -> str:
    for value in values:
        if value is not None:
            return type(value).__name__
    return "null"


def column_schema(rows: Sequence[Mapping[str, Any]]) -> dg.TableSchema:
    columns: dict[str, list[Any]] = {}
    for row in rows[:200]:
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return dg.TableSchema(columns=[dg.TableColumn(name, _type_name(vals)) for name, vals in columns.items()])


def _cell(value: Any) -> str | int | float | bool | None:
    """One value as a table cell: scalars kept, dates ISO, nested values JSON, long text cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _column_type(values: Sequence[Any]) -> str:
    kinds = {_TYPES.get(type(v), "string") for v in values if v is not None}
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "string"


def metadata_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    limit: int | None = TABLE_ROWS,
    masked: bool = True,
) -> dg.TableMetadataValue:
    """``rows`` as a sortable UI table with a schema (``columns`` fixes the columns and their order;
    by default the keys of all rows in first-seen order). Person data is masked unless
    ``masked=False`` (for rows masked already)."""
    shown = list(rows[:limit] if limit else rows)
    if columns is None:
        columns = list(dict.fromkeys(key for row in shown for key in row))
    prepared = [mask_record(row) if masked else dict(row) for row in shown]
    cells = [{col: _cell(row.get(col)) for col in columns} for row in prepared]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(col, _column_type([c[col] for c in cells])) for col in columns]
    )
    records = [dg.TableRecord(c) for c in cells]
    return dg.MetadataValue.table(records=records, schema=schema)


def source_metadata(rows: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """Row count, column schema and a masked preview table for a source or desired-state asset."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "dagster/column_schema": column_schema(rows),
        "preview": metadata_table(rows, limit=PREVIEW_ROWS),
        **extra,
    }


def safe_text(text: str) -> str:
    return mask_text(text)
