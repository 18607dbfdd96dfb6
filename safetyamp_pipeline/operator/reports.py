"""``failures`` and ``ledger``: the failed queue and the record of every write."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from safetyamp_pipeline.core.models import ENTITIES
from safetyamp_pipeline.core.normalize import asset_key, canonical_emp_id, title_key
from safetyamp_pipeline.operator.context import EXIT_NOT_FOUND, EXIT_USAGE, OperatorError
from safetyamp_pipeline.operator.export import csv_export
from safetyamp_pipeline.operator.lookup import entity_name
from safetyamp_pipeline.operator.pii import Masker
from safetyamp_pipeline.operator.tables import format_table, to_json
from safetyamp_pipeline.sync.failure_queue import field_summary

FAILURE_COLUMNS = ["entity", "key", "kind", "reason", "fields", "attempts", "first_seen", "last_seen", "retry_requested"]
FAILURE_HEADERS = ["entity", "key", "kind", "reason", "fields", "attempts", "first seen (UTC)", "last seen (UTC)", "retry"]
LEDGER_TABLE_COLUMNS = ["at", "run_id", "entity", "key", "action", "status", "http_status", "changed_fields", "error"]
LEDGER_TABLE_HEADERS = ["at (UTC)", "run", "entity", "key", "action", "status", "http", "fields", "error"]
LEDGER_FULL_COLUMNS = ["id", *LEDGER_TABLE_COLUMNS[:-1], "before", "after", "error"]
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_entity(text: str | None) -> str | None:
    if text is None:
        return None
    entity = entity_name(text)
    if entity is None:
        raise OperatorError(f"unknown entity {text!r}; use one of {', '.join(ENTITIES)}", EXIT_USAGE)
    return entity


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``24h``/``30m``/``7d``/``2w`` ago, an ISO date (midnight UTC) or an ISO date-time (UTC when naive)."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2).lower()]: int(relative.group(1))})
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise OperatorError(f"--since {text!r} is not a time: use e.g. 24h, 7d, 2026-11-01 or 2026-11-01T08:00", EXIT_USAGE) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ----------------------------------------------------------------------------- failures


def key_forms(entity: str, key: str) -> list[str]:
    """The stored forms of a key the operator typed (the sinks store the desired record's key)."""
    text = key.strip()
    forms = [text]
    if entity == "users":
        forms.append(canonical_emp_id(text) or text)
    elif entity == "user_titles":
        forms.append(title_key(text) or text)
    elif entity == "assets":
        forms.append(asset_key(text) or text)
    elif entity == "sites":
        forms += [text.rstrip("."), text.rstrip(".") + "."]
    return list(dict.fromkeys(forms))


def find_failures(store: Any, key: str, entity: str | None) -> list[dict]:
    """The failures (open or dismissed) recorded under ``key``, in one entity or any."""
    found = []
    for candidate in [entity] if entity else list(ENTITIES):
        for form in key_forms(candidate, key):
            failure = store.failure_get(candidate, form)
            if failure is not None:
                found.append(failure)
                break
    return found


def _one_failure(store: Any, key: str, entity: str | None) -> dict:
    found = find_failures(store, key, entity)
    if not found:
        where = f" for {entity}" if entity else ""
        raise OperatorError(f"no failure recorded under key {key!r}{where}", EXIT_NOT_FOUND)
    if len(found) > 1:
        entities = ", ".join(f["entity"] for f in found)
        raise OperatorError(f"key {key!r} has failures in several entities ({entities}); pass --entity", EXIT_USAGE)
    return found[0]


def retry(store: Any, key: str | None, entity: str | None, everything: bool) -> str:
    if everything:
        count = store.failure_retry(entity=entity, all=entity is None)
        if count == 0:
            raise OperatorError("no open failure to retry" + (f" for {entity}" if entity else ""), EXIT_NOT_FOUND)
        scope = f"{entity} " if entity else ""
        return f"{count} {scope}failure(s) marked for re-send on the next run"
    assert key is not None
    failure = _one_failure(store, key, entity)
    store.failure_retry(entity=failure["entity"], key=failure["key"])
    return f"{failure['entity']} {failure['key']}: marked for re-send on the next run"


def dismiss(store: Any, key: str, entity: str | None) -> str:
    failure = _one_failure(store, key, entity)
    store.failure_dismiss(failure["entity"], failure["key"])
    return (f"{failure['entity']} {failure['key']}: dismissed (hidden from the list; a record SafetyAmp rejected "
            "stays held until its desired record changes or `failures retry` names it)")


def render_failures(store: Any, entity: str | None, reason: str | None, fmt: str, masker: Masker) -> str:
    failures = store.failures_open(entity=entity, reason=reason)
    masked = [{**f, "reason": masker.text(f.get("reason")), "fields": masker.data(f.get("fields"))} for f in failures]
    if fmt == "json":
        return to_json(masked)
    if fmt == "csv":
        return csv_export(masked, [*FAILURE_COLUMNS, "dismissed", "desired_hash"])
    if not failures:
        return "No open failures" + (f" for {entity}" if entity else "") + "."
    rows = [{**f, "fields": field_summary(f.get("fields"))} for f in masked]
    count = f"{len(rows)} open {'failure' if len(rows) == 1 else 'failures'}"
    return format_table(rows, FAILURE_COLUMNS, FAILURE_HEADERS, max_cell=60) + f"\n\n{count} (`explain KIND KEY` shows one in full)"


# ----------------------------------------------------------------------------- ledger


def ledger_rows(store: Any, *, since: datetime | None, entity: str | None, run_id: str | None, key: str | None,
                status: str | None, limit: int | None) -> list[dict]:
    if key is not None and entity is not None:
        for form in key_forms(entity, key):
            rows = store.ledger_query(since=since, entity=entity, run_id=run_id, key=form, limit=limit, status=status)
            if rows:
                return rows
        return []
    if key is not None:
        seen: dict[int, dict] = {}
        for candidate in ENTITIES:
            for form in key_forms(candidate, key):
                for row in store.ledger_query(since=since, entity=candidate, run_id=run_id, key=form, limit=limit, status=status):
                    seen[row["id"]] = row
        rows = sorted(seen.values(), key=lambda r: (r["at"], r["id"]), reverse=True)
        return rows[:limit] if limit else rows
    return store.ledger_query(since=since, entity=entity, run_id=run_id, limit=limit, status=status)


def render_ledger(rows: list[dict], fmt: str, masker: Masker) -> str:
    masked = [{**r, "before": masker.data(r.get("before"), r.get("entity")), "after": masker.data(r.get("after"), r.get("entity")),
               "error": masker.text(r.get("error")) or None} for r in rows]
    if fmt == "json":
        return to_json([{c: r.get(c) for c in LEDGER_FULL_COLUMNS} for r in masked])
    if fmt == "csv":
        return csv_export(masked, LEDGER_FULL_COLUMNS)
    table_rows = [{**r, "changed_fields": r.get("changed_fields") or []} for r in masked]
    return format_table(table_rows, LEDGER_TABLE_COLUMNS, LEDGER_TABLE_HEADERS, max_cell=60) + f"\n\n{len(rows)} {'entry' if len(rows) == 1 else 'entries'}"
