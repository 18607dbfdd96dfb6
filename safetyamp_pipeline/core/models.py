"""Value types of the desired state: DesiredRecord, Issue, DesiredSet."""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Entity = Literal["site_clusters", "sites", "user_titles", "users", "assets"]
ENTITIES: tuple[str, ...] = ("site_clusters", "sites", "user_titles", "users", "assets")
# A SafetyAmp record as its GET returns it (JSON values), and its id: a 5-char string for users,
# an int for everything else.
Record: TypeAlias = Mapping[str, Any]
RecordId: TypeAlias = int | str


@dataclass(frozen=True)
class DesiredRecord:
    entity: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    rejected: str | None = None
    deactivate: bool = False


@dataclass(frozen=True)
class Issue:
    """Something reported about the sources that did not (alone) reject a record."""

    entity: str
    key: str
    field: str | None
    message: str

    def to_row(self) -> dict[str, Any]:
        return {"entity": self.entity, "key": self.key, "field": self.field, "message": self.message}


@dataclass
class DesiredSet:
    records: list[DesiredRecord] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def by_key(self) -> dict[str, DesiredRecord]:
        return {record.key: record for record in self.records}


def desired_hash(record: DesiredRecord) -> str:
    """Stable digest of what is desired (fields, refs, deactivate): changes when the desired value does."""
    # marshal format 0 (no string interning or back-references, so the bytes depend only on the
    # values) of the sorted items: stable across processes and ~3x faster than json.dumps; this
    # runs once per record per plan. Values that marshal refuses fall back to their repr.
    body = (record.entity, record.key, sorted(record.fields.items()), sorted(record.refs.items()), record.deactivate, record.rejected)
    try:
        data = marshal.dumps(body, 0)
    except ValueError:
        data = repr(body).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def record_to_row(record: DesiredRecord) -> dict[str, Any]:
    """A JSON-able dict holding the whole record."""
    return {
        "entity": record.entity,
        "key": record.key,
        "fields": dict(record.fields),
        "refs": dict(record.refs),
        "provenance": dict(record.provenance),
        "rejected": record.rejected,
        "deactivate": record.deactivate,
    }


def record_from_row(row: dict[str, Any]) -> DesiredRecord:
    return DesiredRecord(
        entity=str(row["entity"]),
        key=str(row["key"]),
        fields=dict(row.get("fields") or {}),
        refs={str(k): str(v) for k, v in (row.get("refs") or {}).items()},
        provenance=dict(row.get("provenance") or {}),
        rejected=row.get("rejected"),
        deactivate=bool(row.get("deactivate", False)),
    )
