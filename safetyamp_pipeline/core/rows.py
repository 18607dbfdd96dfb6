"""Tolerant access to source rows and the population rules shared by several builders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from .models import Issue
from .normalize import CODE_MAX, as_int, clean_text, parse_date
from .settings import SyncSettings


def row_get(row: Any, name: str) -> Any:
    """A column of a row, tolerating non-mapping rows."""
    if row.__class__ is dict:
        return row.get(name)
    if isinstance(row, Mapping):
        try:
            return row.get(name)
        except Exception:  # noqa: BLE001 - hostile Mapping implementations
            return None
    return None


def company_mismatch(row: Any, column: str, company: int) -> bool:
    """True when the row names another company (a missing company column is accepted)."""
    raw = row_get(row, column)
    if raw is None:
        return False
    if raw.__class__ is int:  # the usual form: no normalizing needed
        return raw != company
    return as_int(raw) != company


def _fold(text: str) -> str:
    return text.casefold()


# --------------------------------------------------------------------------- clusters


def department_regions(
    departments: Iterable[Any], settings: SyncSettings, issues: list[Issue] | None = None
) -> tuple[list[str], dict[str, tuple[str, str, str]]]:
    """Regions (first-seen spelling, case-insensitive distinct) and, per folded department code,
    (code, description, region) for departments that get a cluster."""
    sink: list[Issue] = issues if issues is not None else []
    root_fold = _fold(clean_text(settings.root_cluster_name) or "")
    regions: dict[str, str] = {}
    depts: dict[str, tuple[str, str, str]] = {}
    for index, row in enumerate(departments or ()):
        if not isinstance(row, Mapping):
            sink.append(Issue("site_clusters", f"row#{index}", None, f"department row {index} is not a record"))
            continue
        if company_mismatch(row, "PRCo", settings.pr_company):
            continue
        code = clean_text(row_get(row, "PRDept"), CODE_MAX)
        desc = clean_text(row_get(row, "Description"))
        region = clean_text(row_get(row, "udRegion"))
        label = code or f"row#{index}"
        if region is None:
            sink.append(Issue("site_clusters", label, "udRegion", f"department {label}: field udRegion is empty, no cluster"))
            continue
        if len(region) > CODE_MAX:  # the region name is the region cluster's code
            sink.append(Issue("site_clusters", label, "udRegion", f"department {label}: field udRegion is longer than {CODE_MAX} characters, no cluster"))
            continue
        region_fold = _fold(region)
        if region_fold == root_fold:
            sink.append(Issue("site_clusters", label, "udRegion", f"department {label}: region {region!r} has the root cluster's name"))
            continue
        region = regions.setdefault(region_fold, region)
        if code is None or desc is None:
            missing = "PRDept" if code is None else "Description"
            sink.append(Issue("site_clusters", label, missing, f"department {label}: field {missing} is empty, no cluster"))
            continue
        code_fold = _fold(code)
        if code_fold in depts:
            sink.append(Issue("site_clusters", code, "PRDept", f"department {code}: duplicate PRDept, first row kept"))
            continue
        depts[code_fold] = (code, desc, region)
    for code_fold in [c for c in depts if c in regions or c == root_fold]:
        code = depts.pop(code_fold)[0]
        sink.append(Issue("site_clusters", code, "PRDept", f"department {code}: code collides with a region or root cluster name"))
    return list(regions.values()), depts


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _moment(value: object) -> dt.datetime | None:
    """A Vista date column as a naive datetime (dates at midnight); None when unreadable."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).replace(tzinfo=None)
        except ValueError:
            day = parse_date(value)
            return dt.datetime(day.year, day.month, day.day) if day else None
    return None


def is_terminated(row: Any) -> bool:
    """TermDate set and not earlier than HireDate. A HireDate after the TermDate is a rehire whose
    old TermDate nobody cleared: active. An unreadable TermDate (or HireDate) still means
    terminated. `clients/vista.py::employees_query` applies the same rule in SQL."""
    term = row_get(row, "TermDate")
    if is_blank(term):
        return False
    hired, left = _moment(row_get(row, "HireDate")), _moment(term)
    return hired is None or left is None or hired <= left


def is_active_employee(row: Any) -> bool:
    """Hired and not terminated (a rehire is active, whether or not its old TermDate was cleared)."""
    return not is_terminated(row) and not is_blank(row_get(row, "HireDate"))
