"""The minimum each scenario needs, from the scenario's design rather than from what the run did.

* Writes: for a churn, the Vista records the churn changed (``Churn.expected_writes``, one write
  each); for ``nochange`` and ``reconcile`` (no drift), none; for an initial load, the records
  SafetyAmp must end up holding: ``core/``'s desired state of the run's source data, planned entity by
  entity against the tenant as it was before the run and applied to a simulated server
  (``safetyamp_pipeline_tests.core.simulated_server``), one write per planned write. The run's own
  writes and the server's diff are then compared with that design by natural key: a write the
  design does not call for is *unexpected*, a designed write the server does not show is *missed*.
* Reads: one tree request for clusters plus ``n // 100 + 1`` pages per paged entity at the maximum
  page size (the API gives no total; the end of a list is only known from a short page), on the
  record counts before the run, when the scenario needs a full read (initial, reconcile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.core_work import MIRRORED, PLAN_ORDER, REF_STATE, load_inputs
from benchmarks.measure import ServerDiff, server_diff
from safetyamp_pipeline.core import desired as core_desired
from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.sync.calendar import today_in_payroll_tz
from safetyamp_pipeline_tests.core.simulated_server import apply_plan

PAGE_SIZE = 100
TREE_ENTITIES = ("site_clusters",)
PAGED_ENTITIES = ("user_titles", "sites", "users", "roles", "asset_types", "assets")


def pages_needed(records: int) -> int:
    """Requests to read a paged collection of ``records`` at the maximum page size."""
    return records // PAGE_SIZE + 1


def full_read_requests(state_before: Mapping[str, list[dict]]) -> int:
    """Requests for a full read of every entity the sync needs (clusters: one tree request)."""
    return len(TREE_ENTITIES) + sum(pages_needed(len(state_before.get(e, []))) for e in PAGED_ENTITIES)


@dataclass
class Design:
    """What a scenario needs: writes by entity and the natural keys they touch, plus reads."""

    writes_by_entity: dict[str, int] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    reads: int = 0

    @property
    def writes(self) -> int:
        return sum(self.writes_by_entity.values())

    @property
    def requests(self) -> int:
        return self.writes + self.reads


def designed_load(env: Mapping[str, str], state_before: Mapping[str, list[dict]]) -> Design:
    """The writes of a sync that brings SafetyAmp from ``state_before`` to what the source data
    calls for, planned by ``core/`` and applied to a simulated server, sink by sink."""
    inputs = load_inputs(env)
    s = inputs.settings
    desired = {
        "site_clusters": core_desired.desired_site_clusters(inputs.departments, s),
        "sites": core_desired.desired_sites(inputs.jobs, inputs.departments, s),
        "user_titles": core_desired.desired_titles(inputs.employees, s),
        "users": core_desired.desired_users(
            inputs.employees, inputs.payroll, inputs.entra_users, inputs.jobs, inputs.departments, s, today_in_payroll_tz()
        ),
        "assets": core_desired.desired_assets(inputs.vehicles, s),
    }
    state: dict[str, list[dict[str, Any]]] = {e: [dict(r) for r in state_before.get(e, [])] for e in MIRRORED}
    design = Design()
    for entity in PLAN_ORDER:
        refs = core_plan.RefIndex.from_state({e: state[e] for e in REF_STATE[entity]}, s)
        items = list(core_plan.plan_entity(entity, desired[entity], state[entity], refs, s))
        design.writes_by_entity[entity] = sum(1 for item in items if item.is_write)
        state = apply_plan(state, items)
    simulated = server_diff(state_before, state)
    design.keys = _keys(simulated)
    return design


def _keys(diff: ServerDiff) -> set[str]:
    return {f"{entity}:{key}" for entity, keys in diff.changed_keys.items() for key in keys}


def compare(design_keys: set[str], diff: ServerDiff) -> dict[str, Any]:
    """Records the server shows written that the design does not call for, and the reverse."""
    written = _keys(diff)
    unexpected, missed = sorted(written - design_keys), sorted(design_keys - written)
    return {
        "unexpected_count": len(unexpected),
        "missed_count": len(missed),
        "unexpected_records": unexpected[:20],
        "missed_records": missed[:20],
    }
