"""Title planner: titles are created when missing, never duplicated or renamed."""

from __future__ import annotations

from ..models import DesiredRecord
from ..normalize import clean_text, title_key
from ..refs import RefIndex, index_key
from ..settings import SyncSettings
from .common import Digest, PlanItem, RecordsByKey, rejected, unchanged


def plan_titles(records: list[DesiredRecord], by_key: RecordsByKey, refs: RefIndex, settings: SyncSettings) -> list[PlanItem]:
    items: list[PlanItem] = []
    for rec in records:
        digest: Digest = rec  # hashed when item.desired_hash is first read
        if rec.rejected:
            items.append(rejected(rec, rec.rejected, digest))
            continue
        name = clean_text(rec.fields.get("name"))
        if name is None:
            items.append(rejected(rec, f"title {rec.key}: field name is empty", digest))
            continue
        existing = by_key.get(title_key(name) or "") or by_key.get(index_key("user_titles", rec.key) or "")
        if existing is not None:  # never duplicated, never renamed
            items.append(unchanged(rec, digest, existing.get("id")))
            continue
        items.append(PlanItem("user_titles", rec.key, "create", payload={"name": name}, method="POST",
                              changed_fields=["name"], after={"name": name}, desired_hash=digest))
    return items

