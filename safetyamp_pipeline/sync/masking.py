"""Masking of person data shown in Dagster metadata, logs and CLI output."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EMAIL_KEYS = {"email", "mail", "Email", "userPrincipalName"}
_PHONE_KEYS = {"mobile_phone", "work_phone", "Phone", "CellPhone", "phone"}
_DATE_KEYS = {"date_of_birth", "BirthDate"}
_ADDRESS_KEYS = {"street", "Address"}
_EMAIL_RE = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
_PHONE_RE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def mask_email(value: Any) -> Any:
    if not isinstance(value, str) or "@" not in value:
        return value if not isinstance(value, str) else ("***" if value else value)
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) >= 4 else "***"


def mask_date(value: Any) -> Any:
    if value in (None, ""):
        return value
    return "****-**-**"


def mask_value(key: str, value: Any) -> Any:
    if key in _EMAIL_KEYS:
        return mask_email(value)
    if key in _PHONE_KEYS:
        return mask_phone(value)
    if key in _DATE_KEYS:
        return mask_date(value)
    if key in _ADDRESS_KEYS and value:
        return "***"
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mask_value(k, v) for k, v in record.items()}


def mask_text(text: str) -> str:
    """Mask any e-mail address or phone-like number inside free text (e.g. an error message)."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_RE.sub(_mask_phone_match, text)


def _mask_phone_match(match: re.Match[str]) -> str:
    # Ten digits or more is a phone number; shorter runs are dates, zip codes, job numbers.
    found = match.group(0)
    return mask_phone(found) if len(re.sub(r"\D", "", found)) >= 10 else found
