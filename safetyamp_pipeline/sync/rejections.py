"""The rows of "rejected before send": each record a sink did not send, the fields at fault, why.

Reasons come from the desired records (``rejected``, unmasked: the store holds them like the
ledger does, the CLI and metadata mask them) or from the engine's report (rejected while planning,
or waiting for a parent record that was not created).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REJECTION_COLUMNS = ("key", "fields", "reason")
_FIELD = re.compile(r"\bfields? ([A-Za-z_][\w.]*)")


def fields_named(reason: str) -> list[str]:
    """The field names a reason names (``employee 7: field email is ...`` → ``["email"]``)."""
    return list(dict.fromkeys(_FIELD.findall(reason or "")))


def rejection_rows(report: Any, desired: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per record the sink did not send (``report`` is the engine's ``SinkReport``)."""
    reasons = {r.key: r.rejected for r in desired if getattr(r, "rejected", None)}
    rows: dict[str, dict[str, Any]] = {}
    for item in report.rejections:
        key = str(item["key"])
        rows[key] = _row(key, reasons.get(key) or str(item.get("reason") or ""))
    for change in report.changes:
        if change.get("status") == "skipped":
            key = str(change["key"])
            rows.setdefault(key, _row(key, str(change.get("error") or "waits for a parent record")))
    # The engine's report keeps a sample; the desired records are complete.
    for key, reason in reasons.items():
        rows.setdefault(key, _row(key, reason))
    return list(rows.values())


def _row(key: str, reason: str) -> dict[str, Any]:
    return {"key": key, "fields": fields_named(reason), "reason": reason}


def table_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for a metadata or terminal table: the field list as one text."""
    return [{"key": r["key"], "fields": ", ".join(r.get("fields") or []), "reason": r.get("reason", "")} for r in rows]
