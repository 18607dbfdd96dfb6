"""The failure queue as a table: each open failure (sent and refused, or held after a 422)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# held: a record SafetyAmp refused (422) is not re-sent until its desired state changes or a retry
# is requested.
FAILURE_QUEUE_COLUMNS = ("key", "kind", "held", "reason", "fields", "attempts", "since", "last_seen", "retry_requested")


def field_summary(fields: Any) -> str:
    """``{"email": ["The email has already been taken."]}`` → ``email: The email has already been taken.``"""
    if isinstance(fields, Mapping):
        return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in fields.items())
    return "" if fields is None else str(fields)


def failure_queue_rows(failures: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "key": f["key"],
            "kind": f.get("kind"),
            "held": f.get("kind") == "rejected" and not f.get("retry_requested"),
            "reason": f.get("reason") or "",
            "fields": field_summary(f.get("fields")),
            "attempts": int(f.get("attempts") or 0),
            "since": f.get("first_seen"),
            "last_seen": f.get("last_seen"),
            "retry_requested": bool(f.get("retry_requested")),
        }
        for f in failures
    ]
