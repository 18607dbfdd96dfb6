"""The pure ``core/`` work of one sync (desired state + plan for every entity), timed on its own.

The inputs are the run's own source data and SafetyAmp mirror, loaded from the sync store before
the clock starts, so the numbers are the CPU and memory of ``core/`` alone (no I/O, no Dagster).
CPU time comes from a plain pass (``time.process_time``); peak memory from a second pass under
``tracemalloc`` (which slows Python down, so it is not timed)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from safetyamp_pipeline.core import desired as core_desired
from safetyamp_pipeline.core import plan as core_plan
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.defs.resources import build_resources
from safetyamp_pipeline.store import SyncStore
from safetyamp_pipeline.sync.calendar import lookback_keys, today_in_payroll_tz

MIRRORED = ("site_clusters", "sites", "user_titles", "users", "assets", "roles", "asset_types")
PLAN_ORDER = ("site_clusters", "sites", "user_titles", "users", "assets")
# The state each sink resolves references from (defs/safetyamp/sinks.py: upstream sinks + reference
# entities + the entity itself), so the plan is timed as the sinks run it.
REF_STATE = {
    "site_clusters": ("site_clusters",),
    "sites": ("site_clusters", "sites"),
    "user_titles": ("user_titles",),
    "users": ("sites", "site_clusters", "user_titles", "roles", "users"),
    "assets": ("users", "sites", "asset_types", "assets"),
}


@dataclass
class CoreInputs:
    settings: SyncSettings
    departments: list[dict]
    jobs: list[dict]
    employees: list[dict]
    payroll: list[dict]
    entra_users: list[dict]
    vehicles: list[dict]
    state: dict[str, list[dict]]


def load_inputs(env: Mapping[str, str]) -> CoreInputs:
    """The source tables and the SafetyAmp mirror the last run left in the store."""
    settings = build_resources(env)["sync_settings"].settings()
    store = SyncStore(env["SAFETYAMP_STORE_URL"])
    stored = set(store.asset_partitions("viewpoint/job_assignments"))
    weeks = [k for k in lookback_keys(today_in_payroll_tz(), settings.lookback_weeks) if k in stored]
    return CoreInputs(
        settings=settings,
        departments=store.load_asset_value("viewpoint/departments"),
        jobs=store.load_asset_value("viewpoint/jobs"),
        employees=store.load_asset_value("viewpoint/employees"),
        payroll=store.load_asset_partitions("viewpoint/job_assignments", weeks) if weeks else [],
        entra_users=store.load_asset_value("entra/users"),
        vehicles=store.load_asset_value("samsara/vehicles"),
        state={entity: list(store.mirror_records(entity).values()) for entity in MIRRORED},
    )


def desired_and_plan(inputs: CoreInputs, timings: dict[str, float] | None = None) -> dict[str, int]:
    """Everything ``core/`` computes for one sync; returns planned actions per kind and, when
    ``timings`` is given, adds the CPU seconds of each step to it."""
    s = inputs.settings
    clock = time.process_time
    steps: dict[str, Callable[[], Any]] = {
        "site_clusters": lambda: core_desired.desired_site_clusters(inputs.departments, s),
        "sites": lambda: core_desired.desired_sites(inputs.jobs, inputs.departments, s),
        "user_titles": lambda: core_desired.desired_titles(inputs.employees, s),
        "users": lambda: core_desired.desired_users(
            inputs.employees, inputs.payroll, inputs.entra_users, inputs.jobs, inputs.departments, s, today_in_payroll_tz()
        ),
        "assets": lambda: core_desired.desired_assets(inputs.vehicles, s),
    }
    desired = {}
    for entity, build in steps.items():
        started = clock()
        desired[entity] = build()
        if timings is not None:
            timings[f"desired {entity}"] = timings.get(f"desired {entity}", 0.0) + clock() - started
    actions: dict[str, int] = {}
    for entity in PLAN_ORDER:
        started = clock()
        refs = core_plan.RefIndex.from_state({e: inputs.state[e] for e in REF_STATE[entity]}, s)
        for item in core_plan.plan_entity(entity, desired[entity], inputs.state[entity], refs, s):
            actions[item.action] = actions.get(item.action, 0) + 1
        if timings is not None:
            timings[f"plan {entity}"] = timings.get(f"plan {entity}", 0.0) + clock() - started
    return actions


def measure_core(env: Mapping[str, str]) -> dict[str, Any]:
    inputs = load_inputs(env)
    timings: dict[str, float] = {}
    started = time.process_time()
    actions = desired_and_plan(inputs, timings)
    cpu = time.process_time() - started
    tracemalloc.start()
    try:
        desired_and_plan(inputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "cpu_seconds": round(cpu, 3),
        "peak_mb": round(peak / 2**20, 1),
        "employees": len(inputs.employees),
        "planned": dict(sorted(actions.items())),
        "cpu_seconds_by_step": {step: round(seconds, 3) for step, seconds in timings.items()},
    }
