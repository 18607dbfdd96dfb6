"""Which Vista employee drives a Samsara vehicle (DESIGN §7 "Driver link")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_NOTES_PATTERN = r"\d{4,}"
_EXTERNAL_ID_KEYS = ("employeeId", "payrollId")


def driver_employee_number(driver: Mapping[str, Any] | None, notes_pattern: str = DEFAULT_NOTES_PATTERN) -> str | None:
    """The employee number from the driver's ``externalIds`` (employeeId or payrollId), else the
    first match of ``notes_pattern`` (4 or more digits) in its notes; ``None`` when neither gives one."""
    if not driver:
        return None
    external_ids = driver.get("externalIds")
    if isinstance(external_ids, Mapping):
        for key in _EXTERNAL_ID_KEYS:
            value = external_ids.get(key)
            if isinstance(value, str | int) and str(value).strip():
                return str(value).strip()
    notes = driver.get("notes")
    if isinstance(notes, str):
        match = re.search(notes_pattern, notes)
        if match:
            return match.group(0)
    return None
