"""CSV exports of ledger and failure rows through pandas.

The output is the same as ``operator.tables.to_csv`` (header; None as an empty cell; dates ISO
8601; nested values JSON with sorted keys; ``\\n`` line ends, none after the last row), so either
can render ``--format csv``. Masking is the caller's job: rows arrive masked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from safetyamp_pipeline.operator.tables import json_default


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=json_default, ensure_ascii=False, sort_keys=True)
    return str(value)


def rows_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """The rows as text cells, one column per name in ``columns`` (a missing key is an empty cell;
    keys not named are left out)."""
    frame = pd.DataFrame.from_records(
        [[_cell(row.get(col)) for col in columns] for row in rows], columns=list(columns)
    )
    return frame.astype(object)


def csv_export(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path | None = None) -> str:
    """CSV of ``rows`` under a header of ``columns``; also written to ``path`` when given."""
    buffer = io.StringIO()
    rows_frame(rows, columns).to_csv(buffer, index=False, lineterminator="\n")
    text = buffer.getvalue().rstrip("\n")
    if path is not None:
        path.write_text(text + "\n", encoding="utf-8")
    return text
