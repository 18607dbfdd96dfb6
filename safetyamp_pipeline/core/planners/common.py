"""Shared parts of the entity planners: the plan item, the changed-fields diff, item builders."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ..models import DesiredRecord, Record, RecordId, desired_hash
from ..normalize import CODE_MAX, DESCRIPTION_MAX, clean_text

Action: TypeAlias = Literal["create", "update", "deactivate", "unchanged", "rejected"]
Method: TypeAlias = Literal["POST", "PATCH", "PUT"]
WRITE_ACTIONS: frozenset[Action] = frozenset({"create", "update", "deactivate"})
# current SafetyAmp records of one entity by index key (lowest id when several share a key)
RecordsByKey: TypeAlias = dict[str, Record]
# A plan item's desired hash, or the desired record to hash when it is first read.
Digest: TypeAlias = "str | DesiredRecord | None"


class _LazyDesiredHash:
    """`PlanItem.desired_hash`: given a DesiredRecord, the hash is computed on first read. Only
    writes and held failures read it; in an unchanged hour ~20k unchanged users never do, and
    hashing them was ~0.1 s of the 20k core CPU."""

    def __get__(self, item: object, owner: type | None = None) -> str | None:
        if item is None:
            return None  # the dataclass field's default
        value = item.__dict__.get("_desired_hash")
        if isinstance(value, DesiredRecord):
            value = item.__dict__["_desired_hash"] = desired_hash(value)
        return value

    def __set__(self, item: object, value: Digest) -> None:
        item.__dict__["_desired_hash"] = value


@dataclass
class PlanItem:
    entity: str
    key: str
    action: Action
    target_id: RecordId | None = None
    payload: dict[str, Any] | None = None
    method: Method | None = None
    changed_fields: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    desired_hash: _LazyDesiredHash = _LazyDesiredHash()
    notes: list[str] = field(default_factory=list)
    # payload field -> [entity, natural key] of a record created earlier in the same plan
    deferred: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return self.action in WRITE_ACTIONS

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PlanItem:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


def code_norm(value: object) -> str | None:
    text = clean_text(value, CODE_MAX)
    return text.casefold() if text else None


def desc_norm(value: object) -> str | None:
    return clean_text(value, DESCRIPTION_MAX)


Normalizer = Callable[[object], object]


def diff(
    want: Mapping[str, Any], existing: Mapping[str, Any], normalizers: Mapping[str, Normalizer]
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    changed: list[str] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in want.items():
        have = existing.get(name)
        if value == have and value.__class__ is have.__class__:
            continue  # identical raw values normalize identically
        norm = normalizers[name]
        if norm(value) != norm(have):
            changed.append(name)
            before[name] = existing.get(name)
            after[name] = value
    return changed, before, after


_ABSENT: Any = object()


def diff_present(
    source: Mapping[str, Any], existing: Mapping[str, Any], normalizers: Mapping[str, Normalizer]
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """`diff` of the fields of `source` that `normalizers` names, in the normalizers' order (no
    intermediate dict of the wanted values: this runs for every existing user of a plan)."""
    changed: list[str] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, norm in normalizers.items():
        value = source.get(name, _ABSENT)
        if value is _ABSENT:
            continue
        have = existing.get(name)
        if value == have and value.__class__ is have.__class__:
            continue  # identical raw values normalize identically
        if norm(value) != norm(have):
            changed.append(name)
            before[name] = have
            after[name] = value
    return changed, before, after


def rejected(record: DesiredRecord, reason: str, digest: Digest, target: RecordId | None = None) -> PlanItem:
    return PlanItem(record.entity, record.key, "rejected", target_id=target, reason=reason, desired_hash=digest)


def unchanged(record: DesiredRecord, digest: Digest, target: RecordId | None, notes: list[str] | None = None, reason: str | None = None) -> PlanItem:
    return PlanItem(record.entity, record.key, "unchanged", target_id=target, reason=reason, desired_hash=digest, notes=notes or [])

