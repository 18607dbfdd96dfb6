"""Dagster metadata builders: row counts, column schemas, masked previews, change tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from safetyamp_pipeline.sync.masking import mask_record, mask_text

PREVIEW_ROWS = 10


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


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "_none_"
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def source_metadata(rows: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """Row count, column schema and a masked preview for a source or desired-state asset."""
    preview = [mask_record(r) for r in rows[:PREVIEW_ROWS]]
    return {
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "dagster/column_schema": column_schema(rows),
        "preview": dg.MetadataValue.md(markdown_table(preview)),
        **extra,
    }


def safe_text(text: str) -> str:
    return mask_text(text)
