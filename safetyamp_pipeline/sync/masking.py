"""Masking of person data shown in Dagster metadata, logs and CLI output."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Person-data fields by name, case-folded (SafetyAmp, Vista and Entra spellings).
EMAIL_FIELDS = frozenset({"email", "mail", "userprincipalname"})
PHONE_FIELDS = frozenset({"mobile_phone", "work_phone", "phone", "cellphone"})
DATE_FIELDS = frozenset({"date_of_birth", "birthdate"})
STREET_FIELDS = frozenset({"street", "street2", "address", "address2"})
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
    folded = key.casefold()
    if folded in EMAIL_FIELDS:
        return mask_email(value)
    if folded in PHONE_FIELDS:
        return mask_phone(value)
    if folded in DATE_FIELDS:
        return mask_date(value)
    if folded in STREET_FIELDS and value:
        return "***"
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mask_value(k, v) for k, v in record.items()}


def mask_emails_in_text(text: str) -> str:
    """Mask every e-mail address inside free text."""
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)


def mask_text(text: str) -> str:
    """Mask any e-mail address or phone-like number inside free text (e.g. an error message)."""
    return _PHONE_RE.sub(_mask_phone_match, mask_emails_in_text(text))


def _mask_phone_match(match: re.Match[str]) -> str:
    # Ten digits or more is a phone number; shorter runs are dates, zip codes, job numbers.
    found = match.group(0)
    return mask_phone(found) if len(re.sub(r"\D", "", found)) >= 10 else found
