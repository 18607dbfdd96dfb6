"""A simulated SafetyAmp server for core tests and benchmarks: applies a plan's writes to a state
so that plan -> apply -> plan can be checked to write nothing."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from safetyamp_pipeline.core.normalize import as_int
from safetyamp_pipeline.core.perf import without_gc
from safetyamp_pipeline.core.plan import PlanItem
from safetyamp_pipeline.core.refs import _id_order, index_key, natural_key

_HASHID_ALPHABET = string.ascii_letters + string.digits


def _next_user_id(taken: Any, counter: list[int]) -> str:
    while True:
        counter[0] += 1
        n, chars = counter[0] * 7919 + 104729, []
        for _ in range(5):
            n, r = divmod(n, len(_HASHID_ALPHABET))
            chars.append(_HASHID_ALPHABET[r])
        candidate = "".join(chars)
        if candidate not in taken:
            return candidate


@without_gc
def apply_plan(state: Mapping[str, Iterable[Any]], items: Iterable[PlanItem]) -> dict[str, list[dict[str, Any]]]:
    """A new state as the SafetyAmp server would hold it after the plan's writes (GET shape: users'
    ids are 5-char strings, other ids ints; a user's title as `current_title {id, name}`)."""
    new: dict[str, list[dict[str, Any]]] = {k: [dict(r) for r in v or ()] for k, v in (state or {}).items()}
    by_id: dict[str, dict[Any, dict[str, Any]]] = {}
    next_int: dict[str, int] = {}
    counter = [0]

    def index(entity: str) -> dict[Any, dict[str, Any]]:
        if entity not in by_id:
            records = new.setdefault(entity, [])
            by_id[entity] = {r.get("id"): r for r in records}
            next_int[entity] = max((as_int(r.get("id")) or 0 for r in records), default=0) + 1
        return by_id[entity]

    for item in items:
        if not item.is_write or item.payload is None:
            continue
        records = index(item.entity)
        payload = dict(item.payload)
        for name, (entity, key) in item.deferred.items():
            wanted = index_key(entity, key)
            payload[name] = next((r.get("id") for r in sorted(new.get(entity, []), key=_id_order)
                                  if index_key(entity, natural_key(entity, r)) == wanted), None)
        if item.action == "create":
            if item.entity == "users":
                new_id: Any = _next_user_id(records.keys(), counter)
            else:
                new_id = next_int[item.entity]
                next_int[item.entity] += 1
            record = {"id": new_id}
            records[new_id] = record
            new[item.entity].append(record)
        else:
            record = records.get(item.target_id)
            if record is None:
                continue
        _store(item.entity, record, payload, new, by_id)
    return new


def _store(
    entity: str,
    record: dict[str, Any],
    payload: dict[str, Any],
    state: dict[str, list[dict[str, Any]]],
    by_id: dict[str, dict[Any, dict[str, Any]]],
) -> None:
    def lookup(other: str, wanted: Any) -> dict[str, Any] | None:
        if other not in by_id:
            by_id[other] = {r.get("id"): r for r in state.get(other, [])}
        return by_id[other].get(wanted)

    for name, value in payload.items():
        if entity == "users" and name == "current_title_id":
            title = lookup("user_titles", value)
            record["current_title"] = {"id": value, "name": title.get("name") if title else None}
        elif entity == "users" and name == "roles":
            roles = [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []
            record["roles"] = [dict(lookup("roles", r.get("id")) or r) for r in roles]
        elif entity == "users" and name == "system_access":
            record["system_access"] = bool(value)
        elif entity == "assets" and name in ("vin", "year"):
            continue  # accepted but not part of the asset resource
        else:
            record[name] = value
    if entity == "site_clusters":
        parent = lookup("site_clusters", record.get("parent_cluster_id"))
        record.setdefault("external_code", None)
        record.setdefault("parent_cluster_id", None)
        record["depth"] = (parent.get("depth", 0) + 1) if parent else 0
        record["path"] = f"{parent.get('path', '/')}{parent.get('id')}/" if parent else "/"
