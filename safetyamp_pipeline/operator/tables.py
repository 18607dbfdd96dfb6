"""Plain-text tables (rendered by ``rich``) and CSV/JSON renderings for terminal output."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


# Columns two spaces apart, a dashed rule under the header, no borders: easy to read, grep and cut.
_PLAIN = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)


def render(table: Table) -> str:
    """A rich table as plain text (no colour, no wrapping), trailing spaces removed."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=100_000, color_system=None, force_terminal=False, emoji=False,
                      highlight=False, markup=False, soft_wrap=True)
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def _is_numeric(rows: Sequence[Mapping[str, Any]], col: str) -> bool:
    values = [row.get(col) for row in rows if row.get(col) is not None]
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
                 max_cell: int = MAX_CELL, right: Sequence[str] = ()) -> str:
    """Rows aligned under a header line and a dashed rule. Numbers (and the ``right`` columns)
    are right-aligned."""
    table = Table(box=_PLAIN, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="")
    for col, header in zip(columns, headers or columns, strict=True):
        table.add_column(header, justify="right" if col in right or _is_numeric(rows, col) else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell(row.get(col), max_cell)) for col in columns))
    return render(table)


def format_pairs(pairs: Iterable[tuple[str, Any]], indent: int = 2, max_cell: int = 100) -> str:
    """``name  value`` lines, names aligned."""
    items = [(name, cell(value, max_cell)) for name, value in pairs]
    if not items:
        return " " * indent + "(none)"
    grid = Table.grid(padding=(0, 2, 0, 0), pad_edge=False)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    for name, value in items:
        grid.add_row(Text(name), Text(value))
    return "\n".join((" " * indent + line).rstrip() for line in render(grid).splitlines())


def indent(text: str, by: int = 2) -> str:
    return "\n".join((" " * by + line) if line else line for line in text.splitlines())


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), default=json_default, ensure_ascii=False, indent=2)
