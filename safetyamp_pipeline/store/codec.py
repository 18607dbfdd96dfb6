"""JSON and timestamp handling shared by the store's tables.

Values are stored as JSON text (portable across SQLite and PostgreSQL). Dates and datetimes become
ISO-8601 strings on the way in and stay strings on the way out; Decimals become numbers.
Timestamps the store itself keeps are timezone-aware UTC in Python and naive UTC in the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` hook: dates, datetimes, times, Decimals, sets and tuples."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


class StoreJSONEncoder(json.JSONEncoder):
    """A `json.JSONEncoder` that understands date/datetime/Decimal (see `json_default`)."""

    def default(self, o: Any) -> Any:
        return json_default(o)


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def describe_unserializable(row: Any) -> str:
    """Name the first field of `row` that cannot be encoded (for error messages)."""
    if isinstance(row, Mapping):
        for field, value in row.items():
            try:
                dumps(value)
            except (TypeError, ValueError) as exc:
                return f"field {field!r}: {exc}"
        return "unknown field"
    return f"row is a {type(row).__name__}, not a mapping"


def require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, stored as naive UTC (same text on SQLite, same type on PG)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        return require_aware(value, "timestamp").replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
