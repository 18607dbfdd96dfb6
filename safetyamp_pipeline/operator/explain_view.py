"""Text rendering of an Explanation for the terminal."""

from __future__ import annotations

from typing import Any

from safetyamp_pipeline.operator.explain import Explanation, SourceBlock
from safetyamp_pipeline.operator.pii import Masker
from safetyamp_pipeline.operator.tables import cell, format_pairs, format_table, indent

# The source column a field is copied from when the builder recorded no special rule for it
# (core/desired.py and core/desired_users.py record provenance only where a choice was made).
DIRECT_RULES: dict[str, dict[str, str]] = {
    "users": {
        "emp_id": "bPREH.Employee (leading zeros dropped)",
        "first_name": "bPREH.FirstName", "middle_name": "bPREH.MidName", "last_name": "bPREH.LastName",
        "gender": "bPREH.Sex (M/F)", "date_of_birth": "bPREH.BirthDate", "current_hire_date": "bPREH.HireDate",
        "street": "bPREH.Address", "city": "bPREH.City", "state": "bPREH.State", "zip_code": "bPREH.Zip",
        "country": "setting country", "work_phone": "bPREH.Phone (E.164)", "text_opt_out": "setting new_user_text_opt_out",
        "timezone": "setting timezone", "role": "setting default_role_name", "current_title": "bPREH.udEmpTitle",
        "home_site_region_office": "bPRDP.udRegion of bPREH.PRDept",
    },
    "sites": {"street": "bJCJM.ShipAddress", "city": "bJCJM.ShipCity", "state": "bJCJM.ShipState",
              "zip_code": "bJCJM.ShipZip", "country": "setting country", "timezone": "setting timezone"},
    "site_clusters": {"external_code": "bPRDP.PRDept (department) or bPRDP.udRegion (region)",
                      "osha_establishment": "setting osha_establishment", "parent": "cluster tree"},
    "user_titles": {},
    "assets": {"model": "Samsara model", "description": "Samsara notes", "status": "active: present in Samsara",
               "vin": "Samsara vin (17 alphanumerics)", "year": "Samsara year"},
}


def _heading(title: str) -> str:
    return f"{title}\n{'-' * min(len(title), 100)}"


def render(ex: Explanation, masker: Masker) -> str:
    parts = [_title(ex)]
    parts += [_source(block, masker, ex.kind.entity) for block in ex.sources]
    parts.append(_desired(ex, masker))
    parts.append(_mirror(ex, masker))
    parts.append(_plan(ex, masker))
    parts.append(_failure(ex, masker))
    parts.append(_ledger(ex, masker))
    return "\n\n".join(parts) + "\n"


def _title(ex: Explanation) -> str:
    return f"{ex.kind.label} {ex.wanted.strip()!s} → SafetyAmp {ex.kind.entity}, natural key {ex.key!r}"


def _source(block: SourceBlock, masker: Masker, entity: str) -> str:
    lines = [_heading("Source: " + block.title)]
    if block.note:
        lines.append(f"  ({block.note})")
    if block.rows and block.columns:
        rows = [{c: masker.field(c, r.get(c), entity) for c in block.columns} for r in block.rows]
        lines.append(indent(format_table(rows, block.columns)))
    else:
        for index, row in enumerate(block.rows):
            if index:
                lines.append("")
            lines.append(format_pairs((str(k), masker.field(str(k), v, entity)) for k, v in row.items()))
    return "\n".join(lines)


def _status(ex: Explanation) -> str:
    rec = ex.desired
    if rec is None:
        return "absent"
    if rec.rejected:
        return f"REJECTED before send: {rec.rejected}"
    if rec.deactivate:
        return "to deactivate"
    return "to keep in SafetyAmp"


def _desired(ex: Explanation, masker: Masker) -> str:
    lines = [_heading(f"Desired record ({ex.kind.desired_asset})")]
    rec = ex.desired
    if rec is None:
        lines.append(f"  ({ex.desired_note or 'no desired record: the sync does not send this key'})")
    else:
        lines.append(f"  status: {masker.text(_status(ex))}")
        rules = DIRECT_RULES.get(rec.entity, {})
        rows = [{"field": name, "value": masker.field(name, value, rec.entity), "rule": rec.provenance.get(name) or rules.get(name, "")}
                for name, value in rec.fields.items()]
        if rows:
            lines.append(indent(format_table(rows, ["field", "value", "rule"])))
        if rec.refs:
            lines.append("")
            refs = [{"reference": name, "natural key": value, "rule": rec.provenance.get(name) or rules.get(name, "")}
                    for name, value in rec.refs.items()]
            lines.append(indent(format_table(refs, ["reference", "natural key", "rule"])))
    for dup in ex.duplicates:
        lines.append(f"  another source row {dup.key!r}: {masker.text(dup.rejected or 'rejected')}")
    return "\n".join(lines)


def _mirror(ex: Explanation, masker: Masker) -> str:
    read = f", last full read {cell(ex.mirror_read_at)} UTC" if ex.mirror_read_at else ", never read in full"
    lines = [_heading(f"SafetyAmp record (mirror of {ex.kind.entity}{read})")]
    if ex.mirror is None:
        lines.append("  (not in SafetyAmp as far as the mirror knows)")
    else:
        lines.append(format_pairs((str(k), masker.field(str(k), v, ex.kind.entity)) for k, v in ex.mirror.items()))
    return "\n".join(lines)


def _plan(ex: Explanation, masker: Masker) -> str:
    lines = [_heading("Pending plan (core.plan against the mirror)")]
    item = ex.plan
    if item is None:
        lines.append(f"  ({ex.plan_note})")
        return "\n".join(lines)
    target = f" {item.method} {ex.kind.entity}/{item.target_id}" if item.method and item.target_id is not None else (
        f" {item.method} {ex.kind.entity}" if item.method else "")
    lines.append(f"  action: {item.action}{target}")
    if item.action == "unchanged":
        lines.append("  in sync: nothing would be sent")
    if item.reason:
        label = "rejected" if item.action == "rejected" else "reason"
        lines.append(f"  {label}: {masker.text(item.reason)}")
    if item.is_write and item.changed_fields:
        rows = [{"field": name, "before": masker.field(name, item.before.get(name), item.entity), "→": "→",
                 "after": masker.field(name, item.after.get(name), item.entity)} for name in item.changed_fields]
        lines.append(indent(format_table(rows, ["field", "before", "→", "after"], headers=["field", "before", "", "after"])))
    for name, (entity, key) in item.deferred.items():
        lines.append(f"  {name} waits for {entity} {key!r}, created earlier in the same run")
    for note in item.notes:
        lines.append(f"  note: {masker.text(note)}")
    if ex.held:
        lines.append("  HELD: SafetyAmp rejected this exact desired record before; it is not re-sent until the "
                     f"record changes or `safetyamp-pipeline failures retry {ex.key} --entity {ex.kind.entity}`")
    return "\n".join(lines)


def _failure(ex: Explanation, masker: Masker) -> str:
    lines = [_heading("Open failure")]
    f = ex.failure
    if not f:
        lines.append("  (none)")
        return "\n".join(lines)
    state = "dismissed" if f.get("dismissed") else ("retry requested for the next run" if f.get("retry_requested") else "open")
    pairs: list[tuple[str, Any]] = [
        ("state", state), ("kind", f.get("kind")), ("reason", masker.text(f.get("reason"))),
        ("fields", masker.data(f.get("fields"))), ("attempts", f.get("attempts")),
        ("first seen", f.get("first_seen")), ("last seen", f.get("last_seen")),
    ]
    lines.append(format_pairs(pairs, max_cell=200))
    return "\n".join(lines)


def _ledger(ex: Explanation, masker: Masker) -> str:
    lines = [_heading(f"Ledger history (latest first, up to {len(ex.ledger)})" if ex.ledger else "Ledger history")]
    if not ex.ledger:
        lines.append("  (nothing was ever written for this key)")
        return "\n".join(lines)
    rows = [{**e, "changed_fields": e.get("changed_fields") or [], "error": masker.text(e.get("error"))} for e in ex.ledger]
    lines.append(indent(format_table(rows, ["at", "run_id", "action", "status", "http_status", "changed_fields", "error"],
                                     headers=["at (UTC)", "run", "action", "status", "http", "fields", "error"])))
    return "\n".join(lines)
