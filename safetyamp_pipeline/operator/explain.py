"""``explain KIND KEY``: one record end to end — source rows, desired record with its rules, the
SafetyAmp mirror record, the pending plan against that mirror, the open failure and the ledger.

This is the "sync diff" of the legacy dashboard for every entity type, computed with the same
``core.plan`` the sinks use, so it cannot disagree with what the next run will do (short of a
full read finding SafetyAmp changed since the mirror was last updated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from safetyamp_pipeline.core.models import ENTITIES, DesiredRecord
from safetyamp_pipeline.core.normalize import asset_key, canonical_emp_id
from safetyamp_pipeline.core.plan import PlanItem, RefIndex, plan_entity
from safetyamp_pipeline.core.refs import index_key
from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.operator import lookup
from safetyamp_pipeline.operator.context import EXIT_NOT_FOUND, OperatorError

REFERENCE_ENTITIES = ("roles", "asset_types")
PAYROLL_ROWS_SHOWN = 10
TITLE_HOLDERS_SHOWN = 50


@dataclass
class SourceBlock:
    """Source rows shown under one heading; ``columns`` set = a table, else one block of pairs per row."""

    title: str
    rows: list[dict]
    columns: list[str] | None = None
    note: str | None = None


@dataclass
class Explanation:
    kind: lookup.Kind
    wanted: str
    key: str
    sources: list[SourceBlock] = field(default_factory=list)
    desired: DesiredRecord | None = None
    duplicates: list[DesiredRecord] = field(default_factory=list)
    desired_note: str | None = None
    mirror: dict | None = None
    mirror_read_at: datetime | None = None
    plan: PlanItem | None = None
    plan_note: str | None = None
    failure: dict | None = None
    held: bool = False
    ledger: list[dict] = field(default_factory=list)


def mirror_state(store: Any) -> dict[str, list[dict]]:
    return {e: list(store.mirror_records(e).values()) for e in (*ENTITIES, *REFERENCE_ENTITIES)}


def pending_item(entity: str, key: str, desired: list[DesiredRecord], state: dict[str, list[dict]],
                 settings: SyncSettings) -> PlanItem | None:
    """The plan item for ``key``, planned like the sink plans the whole entity (clusters need their
    parents in the same plan, sites and clusters adopt unkeyed records once)."""
    refs = RefIndex.from_state(state, settings)
    wanted = index_key(entity, key)
    items = plan_entity(entity, desired, state.get(entity, []), refs, settings)
    exact = next((item for item in items if item.key == key), None)
    return exact or next((item for item in items if index_key(entity, item.key) == wanted), None)


def is_held(item: PlanItem | None, failure: dict | None) -> bool:
    """The sink's held-failure rule (sync/reconcile.py): a 422 is not re-sent while the desired
    record is unchanged and no retry was asked for."""
    if item is None or not item.is_write or not failure or failure.get("kind") != "rejected":
        return False
    return not failure.get("retry_requested") and failure.get("desired_hash") == item.desired_hash


def explain(store: Any, kind_name: str, wanted: str, settings: SyncSettings, as_of: date | None = None,
            ledger_limit: int = 20) -> Explanation:
    kind = lookup.KINDS[kind_name]
    sources = _source_values(store, kind)
    desired, desired_note = lookup.desired_records(store, kind)
    mirror = store.mirror_records(kind.entity)
    match = lookup.find(kind, wanted, desired, mirror, {k: v[0] for k, v in sources.items()})
    blocks = _source_blocks(store, kind, wanted, match, sources, settings, as_of)
    if match.key is None and not match.duplicates and not any(block.rows for block in blocks):
        where = f"{kind.desired_asset}, the SafetyAmp mirror ({kind.entity}) or the source rows"
        hint = f" ({desired_note}; has a sync run against this store?)" if desired_note and not mirror else ""
        raise OperatorError(f"no {kind.label} {wanted!r} in {where}{hint}", EXIT_NOT_FOUND)
    key = match.key or (match.duplicates[0].key if match.duplicates else wanted.strip())
    out = Explanation(kind, wanted, key, blocks, match.desired, match.duplicates, desired_note, match.mirror,
                      store.mirror_read_at(kind.entity))
    state = mirror_state(store)
    if match.desired is not None:
        out.plan = pending_item(kind.entity, match.desired.key, desired, state, settings)
    elif match.mirror is not None and kind.entity == "assets":
        out.plan = pending_item(kind.entity, key, desired, state, settings)  # retired when gone from Samsara
    if out.plan is None:
        out.plan_note = _no_plan_note(kind, match, desired_note)
    out.failure = store.failure_get(kind.entity, key)
    out.held = is_held(out.plan, out.failure)
    out.ledger = store.ledger_query(entity=kind.entity, key=key, limit=ledger_limit)
    return out


def _no_plan_note(kind: lookup.Kind, match: lookup.Match, desired_note: str | None) -> str:
    if desired_note:
        return desired_note
    if match.desired is None and match.mirror is not None:
        return (f"not in {kind.desired_asset}: the sync does not manage this SafetyAmp record "
                "(it is left as it is)")
    return f"not in {kind.desired_asset}: nothing to send"


# ----------------------------------------------------------------------------- sources


_SOURCE_ASSETS: dict[str, tuple[str, ...]] = {
    "employee": ("viewpoint/employees", "entra/users", "viewpoint/jobs"),
    "site": ("viewpoint/jobs", "viewpoint/departments"),
    "cluster": ("viewpoint/departments",),
    "title": ("viewpoint/employees",),
    "vehicle": ("samsara/vehicles",),
}


def _source_values(store: Any, kind: lookup.Kind) -> dict[str, tuple[list[dict], str | None]]:
    return {name: lookup.load_rows(store, name) for name in _SOURCE_ASSETS[kind.name]}


def _source_blocks(store: Any, kind: lookup.Kind, wanted: str, match: lookup.Match,
                   sources: dict[str, tuple[list[dict], str | None]], settings: SyncSettings,
                   as_of: date | None) -> list[SourceBlock]:
    key = match.key or wanted
    if kind.name == "employee":
        return _employee_sources(store, key, sources, settings, as_of)
    if kind.name == "site":
        jobs, note = sources["viewpoint/jobs"]
        found = lookup.job_rows(jobs, key)
        blocks = [SourceBlock("Vista job (bJCJM + bJCCM.Department, viewpoint/jobs)", found, note=note or _none(found, "no open job"))]
        departments, dnote = sources["viewpoint/departments"]
        for job in found[:1]:
            rows = lookup.department_rows(departments, job.get("Department"))
            blocks.append(SourceBlock(f"Vista department {job.get('Department')!r} (bPRDP, viewpoint/departments)", rows,
                                      note=dnote or _none(rows, "no such department")))
        return blocks
    if kind.name == "cluster":
        departments, note = sources["viewpoint/departments"]
        if match.desired is not None and not match.desired.refs:
            return [SourceBlock("Root cluster", [], note=f"the root cluster comes from the settings (root_cluster_name {settings.root_cluster_name!r})")]
        rows = lookup.department_rows(departments, key)
        if rows:
            return [SourceBlock("Vista department (bPRDP, viewpoint/departments)", rows, note=note)]
        rows = lookup.region_rows(departments, key)
        return [SourceBlock("Vista departments of this region (bPRDP.udRegion, viewpoint/departments)", rows,
                            columns=["PRCo", "PRDept", "Description", "udRegion"], note=note or _none(rows, "no department"))]
    if kind.name == "title":
        employees, note = sources["viewpoint/employees"]
        rows = lookup.title_holders(employees, key)
        shown = [{c: r.get(c) for c in ("Employee", "FirstName", "LastName", "udEmpTitle", "TermDate")} for r in rows]
        title = f"Vista employees holding this title (bPREH.udEmpTitle), {len(rows)}"
        if len(rows) > TITLE_HOLDERS_SHOWN:
            title += f", first {TITLE_HOLDERS_SHOWN} shown"
        return [SourceBlock(title, shown[:TITLE_HOLDERS_SHOWN], columns=["Employee", "FirstName", "LastName", "udEmpTitle", "TermDate"],
                            note=note or _none(rows, "no employee"))]
    vehicles, note = sources["samsara/vehicles"]
    serial = match.desired.fields.get("serial") if match.desired else None
    rows = lookup.vehicle_rows(vehicles, wanted, asset_key(serial) if serial else asset_key(key))
    return [SourceBlock("Samsara vehicle (samsara/vehicles)", rows, note=note or _none(rows, "not in Samsara"))]


def _none(rows: list, what: str) -> str | None:
    return None if rows else f"{what} found"


def _employee_sources(store: Any, emp: str, sources: dict[str, tuple[list[dict], str | None]],
                      settings: SyncSettings, as_of: date | None) -> list[SourceBlock]:
    employees, note = sources["viewpoint/employees"]
    rows = lookup.employee_rows(employees, canonical_emp_id(emp) or emp)
    blocks = [SourceBlock("Vista employee (bPREH, viewpoint/employees)", rows, note=note or _none(rows, "no employee row"))]
    payroll, weeks, pnote = _lookback_payroll(store, settings, as_of)
    mine = lookup.payroll_rows(payroll, canonical_emp_id(emp) or emp)
    title = f"Vista payroll rows (bPRJC, viewpoint/job_assignments) in the {settings.lookback_weeks}-week look-back"
    title += f" ({weeks} week(s) stored), latest first"
    if len(mine) > PAYROLL_ROWS_SHOWN:
        title += f", {PAYROLL_ROWS_SHOWN} of {len(mine)}"
    blocks.append(SourceBlock(title, mine[:PAYROLL_ROWS_SHOWN], columns=["PREndDate", "JCCo", "Job", "Hrs"],
                              note=pnote or _none(mine, "no payroll row in the look-back")))
    entra, enote = sources["entra/users"]
    found = lookup.entra_rows(entra, canonical_emp_id(emp) or emp)
    blocks.append(SourceBlock("Entra user (employeeId match, entra/users)", found, note=enote or _none(found, "no Entra user")))
    return blocks


def _lookback_payroll(store: Any, settings: SyncSettings, as_of: date | None) -> tuple[list[dict], int, str | None]:
    # The desired users asset reads the same weeks (defs/desired/assets.py, load_lookback_payroll).
    from safetyamp_pipeline.sync.calendar import lookback_keys, today_in_payroll_tz

    stored = set(store.asset_partitions("viewpoint/job_assignments"))
    keys = [k for k in lookback_keys(as_of or today_in_payroll_tz(), settings.lookback_weeks) if k in stored]
    if not keys:
        return [], 0, "viewpoint/job_assignments has no stored week in the look-back window"
    return store.load_asset_partitions("viewpoint/job_assignments", keys), len(keys), None
