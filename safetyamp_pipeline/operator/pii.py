"""Masking of person data in operator output (unless ``--show-pii``).

Only known person-data fields are masked by name (SafetyAmp, Vista and Entra spellings), so dates
such as ``HireDate`` or ``PREndDate`` stay readable; free text (reasons, errors) has any e-mail
address inside it masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safetyamp_pipeline.sync.masking import (
    DATE_FIELDS,
    EMAIL_FIELDS,
    PHONE_FIELDS,
    STREET_FIELDS,
    mask_date,
    mask_email,
    mask_emails_in_text,
    mask_phone,
)

# Entities whose street is a job site's or office's address, not a person's.
NON_PERSON_ENTITIES = frozenset({"sites", "site_clusters", "user_titles", "assets"})


def mask_field(name: str, value: Any, streets: bool = True) -> Any:
    """The value of field ``name`` as shown without ``--show-pii`` (``streets=False`` for records
    whose street is a site's address)."""
    folded = name.casefold()
    if isinstance(value, Mapping | list):
        return mask_data(value, streets)
    if folded in EMAIL_FIELDS:
        return mask_email(value)
    if folded in PHONE_FIELDS:
        return mask_phone(value)
    if folded in DATE_FIELDS:
        return mask_date(value)
    if streets and folded in STREET_FIELDS and value not in (None, ""):
        return "***"
    if isinstance(value, str) and "@" in value:
        return mask_free_text(value)
    return value


def mask_data(value: Any, streets: bool = True) -> Any:
    """Mask every person-data field inside nested dicts and lists."""
    if isinstance(value, Mapping):
        return {k: mask_field(str(k), v, streets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v, streets) for v in value]
    if isinstance(value, str) and "@" in value:
        return mask_free_text(value)
    return value


def mask_free_text(text: str) -> str:
    """Any e-mail address inside ``text`` masked (reasons and errors name fields, not values)."""
    return mask_emails_in_text(text)


class Masker:
    """Applies masking or not, as the command line asked."""

    def __init__(self, show_pii: bool) -> None:
        self.show_pii = show_pii

    def field(self, name: str, value: Any, entity: str | None = None) -> Any:
        return value if self.show_pii else mask_field(name, value, entity not in NON_PERSON_ENTITIES)

    def data(self, value: Any, entity: str | None = None) -> Any:
        return value if self.show_pii else mask_data(value, entity not in NON_PERSON_ENTITIES)

    def text(self, text: str | None) -> str:
        if not text:
            return ""
        return text if self.show_pii else mask_free_text(text)
