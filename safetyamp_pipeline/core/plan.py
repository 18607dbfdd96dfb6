"""Reconciliation plan: desired records vs what SafetyAmp holds -> exact writes.

`plan_entity` gives one PlanItem per desired record (plus retire intents for vehicles gone from
Samsara): create / update (changed fields only, compared after normalizing both sides the same
way) / deactivate / unchanged / rejected (with the reason), with the exact request body. The
per-entity planners live in `core/planners/`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable

from .models import DesiredRecord, DesiredSet, Record, RecordId
from .perf import without_gc
from .planners.assets import matched_asset_ids, plan_assets
from .planners.clusters import plan_clusters
from .planners.common import WRITE_ACTIONS, Action, Method, PlanItem, RecordsByKey
from .planners.sites import plan_sites
from .planners.titles import plan_titles
from .planners.users import plan_users
from .refs import DuplicateKey, RefIndex, _id_order, _is_live, duplicate_keys, index_key, natural_key
from .settings import SyncSettings

__all__ = [
    "Action",
    "DuplicateKey",
    "Method",
    "PlanItem",
    "RefIndex",
    "WRITE_ACTIONS",
    "duplicate_keys",
    "mass_deactivation_reason",
    "matched_asset_ids",
    "natural_key",
    "plan_entity",
    "resolve_deferred",
]


def resolve_deferred(item: PlanItem, refs: RefIndex) -> PlanItem:
    """Fill the payload fields that waited for a record created earlier in the same plan (e.g. a
    department cluster whose region was created just before). Unresolvable ones stay deferred."""
    if not item.deferred or item.payload is None:
        return item
    payload = dict(item.payload)
    still: dict[str, list[str]] = {}
    for name, (entity, key) in item.deferred.items():
        ref_id = refs.id_of(entity, key)
        if ref_id is None:
            still[name] = [entity, key]
        else:
            payload[name] = ref_id
    return dataclasses.replace(item, payload=payload, deferred=still)


def mass_deactivation_reason(items: Iterable[PlanItem], active_count: int, settings: SyncSettings) -> str | None:
    """Why a plan must stop for review: at least `mass_deactivation_min` deactivations that are more
    than `mass_deactivation_share` of the currently active records. None when it may proceed."""
    count = sum(1 for item in items if item.action == "deactivate")
    if count < settings.mass_deactivation_min:
        return None
    if active_count > 0 and count <= settings.mass_deactivation_share * active_count:
        return None
    return (
        f"{count} deactivations out of {active_count} active records exceed the guard "
        f"(min {settings.mass_deactivation_min}, share {settings.mass_deactivation_share:.0%})"
    )



def _current_by_key(entity: str, current: list[Record]) -> RecordsByKey:
    out: RecordsByKey = {}
    for record in sorted(current, key=_id_order):
        key = index_key(entity, natural_key(entity, record))
        if key is not None:
            out.setdefault(key, record)
    return out


@without_gc
def plan_entity(
    entity: str,
    desired: DesiredSet | Iterable[DesiredRecord],
    current_records: Iterable[object],
    refs: RefIndex | None,
    settings: SyncSettings | None = None,
    *,
    owned_asset_ids: Collection[RecordId] | None = None,
) -> list[PlanItem]:
    """The plan for one entity. `refs` resolves references to other entities (and holds the
    uniqueness indexes for users); pass `RefIndex.from_state(full_state, settings)`.
    `owned_asset_ids` (assets only): ids of the SafetyAmp assets the sync created or matched from
    Samsara; only those are retired when Samsara stops listing them (None: none is retired)."""
    settings = settings or SyncSettings()
    records = list(desired.records if isinstance(desired, DesiredSet) else desired or ())
    # not copied: planners only read the current records (items carry values, never the records)
    current = refs.live_if_from(entity, current_records) if refs is not None else None
    if current is None:
        current = [r for r in current_records or () if _is_live(r)]
    if refs is None:
        refs = RefIndex.from_state({entity: current}, settings)
    by_key = refs.keyed_if_same(entity, current)
    if by_key is None:
        by_key = _current_by_key(entity, current)
    if entity == "assets":
        return plan_assets(records, by_key, refs, settings, owned_asset_ids)
    planner = _PLANNERS.get(entity)
    if planner is None:
        raise ValueError(f"unknown entity {entity!r}")
    return planner(records, by_key, refs, settings)


Planner = Callable[[list[DesiredRecord], RecordsByKey, RefIndex, SyncSettings], list[PlanItem]]
_PLANNERS: dict[str, Planner] = {
    "site_clusters": plan_clusters,
    "sites": plan_sites,
    "user_titles": plan_titles,
    "users": plan_users,
}
