"""Laravel-style request validation of the SafetyAmp emulator (external-apis §1.6).

Each ``validate_<entity>(data, state, mode, current)`` returns ``(changes, errors)``: the stored
fields to write (only those sent; unknown fields are ignored silently) and a :class:`Errors`
holding Laravel's messages in rule order. ``mode`` is ``"create"`` (POST), ``"put"`` or
``"patch"``; ``current`` is the stored record being updated (None on create).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from functools import lru_cache
from typing import Any

import phonenumbers

from safetyamp_pipeline.sandbox.safetyamp_store import SafetyAmpState

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_YMD = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_TRUE_FALSE = {True: True, False: False, "1": True, "0": False, "true": True, "false": False}


class Errors:
    """Field -> messages, in insertion (rule) order; renders Laravel's 422 body."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def has(self, field: str) -> bool:
        return field in self.by_field

    def body(self) -> dict[str, Any]:
        messages = [m for msgs in self.by_field.values() for m in msgs]
        message = messages[0]
        extra = len(messages) - 1
        if extra == 1:
            message += " (and 1 more error)"
        elif extra > 1:
            message += f" (and {extra} more errors)"
        return {"message": message, "errors": self.by_field}


def clean_input(value: Any) -> Any:
    """Laravel's TrimStrings + ConvertEmptyStringsToNull middleware, applied recursively."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, dict):
        return {k: clean_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_input(v) for v in value]
    return value


def label(field: str) -> str:
    return field.replace("_", " ")


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_valid_phone(value: str) -> bool:
    """E.164 syntax and a number that ``phonenumbers`` calls valid (a real, assignable number)."""
    if not _E164.match(value):
        return False
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class _Rules:
    """Applies rules field by field, collecting changes and errors."""

    def __init__(self, data: dict[str, Any], mode: str, required: tuple[str, ...]) -> None:
        self.data = data
        self.mode = mode
        self.required = set(required)
        self.changes: dict[str, Any] = {}
        self.errors = Errors()

    def value(self, field: str) -> tuple[bool, Any]:
        """(present-and-not-null, value); records the ``required`` error and explicit nulls."""
        if field not in self.data:
            if field in self.required and self.mode != "patch":
                self.errors.add(field, f"The {label(field)} field is required.")
            return False, None
        value = self.data[field]
        if value is None:
            if field in self.required:
                self.errors.add(field, f"The {label(field)} field is required.")
            else:
                self.changes[field] = None
            return False, None
        return True, value

    def string(self, field: str, max_len: int = 255) -> str | None:
        present, value = self.value(field)
        if not present:
            return None
        if isinstance(value, (bool, dict, list)):
            self.errors.add(field, f"The {label(field)} must be a string.")
            return None
        value = str(value)
        if len(value) > max_len:
            self.errors.add(field, f"The {label(field)} must not be greater than {max_len} characters.")
            return None
        self.changes[field] = value
        return value

    def date(self, field: str) -> None:
        present, value = self.value(field)
        if not present:
            return
        if not isinstance(value, str) or not _YMD.match(value) or not _real_date(value):
            self.errors.add(field, f"The {label(field)} does not match the format Y-m-d.")
            return
        self.changes[field] = value

    def boolean(self, field: str, as_int: bool = False) -> None:
        present, value = self.value(field)
        if not present:
            return
        key = value.lower() if isinstance(value, str) else value
        if isinstance(key, (dict, list)) or key not in _TRUE_FALSE:
            self.errors.add(field, f"The {label(field)} field must be true or false.")
            return
        flag = _TRUE_FALSE[key]
        self.changes[field] = int(flag) if as_int else flag

    def integer(self, field: str) -> int | None:
        present, value = self.value(field)
        if not present:
            return None
        number = _as_int(value)
        if number is None:
            self.errors.add(field, f"The {label(field)} must be an integer.")
            return None
        self.changes[field] = number
        return number

    def one_of(self, field: str, allowed: tuple[int, ...]) -> None:
        present, value = self.value(field)
        if not present:
            return
        number = _as_int(value)
        if number is None or number not in allowed:
            self.errors.add(field, f"The selected {label(field)} is invalid.")
            return
        self.changes[field] = number

    def exists(self, field: str, table: dict[Any, Any], *, as_str: bool = False) -> Any:
        present, value = self.value(field)
        if not present:
            return None
        key = value if as_str else _as_int(value)
        if key is None or isinstance(key, (dict, list)) or key not in table:
            self.errors.add(field, f"The selected {label(field)} is invalid.")
            return None
        self.changes[field] = key
        return key

    def phone(self, field: str) -> str | None:
        present, value = self.value(field)
        if not present:
            return None
        if not isinstance(value, str) or not is_valid_phone(value):
            self.errors.add(field, "validation.phone")
            return None
        self.changes[field] = value
        return value

    def timezone(self, field: str) -> None:
        present, value = self.value(field)
        if not present:
            return
        if not isinstance(value, str) or value not in _timezones():
            self.errors.add(field, f"The {label(field)} must be a valid timezone.")
            return
        self.changes[field] = value

    def decimal_string(self, field: str) -> None:
        present, value = self.value(field)
        if not present:
            return
        try:
            float(value)
        except (TypeError, ValueError):
            self.errors.add(field, f"The {label(field)} must be a number.")
            return
        self.changes[field] = str(value)

    def id_list(self, field: str, table: dict[Any, Any], stored_as: str) -> None:
        present, value = self.value(field)
        if not present:
            return
        if not isinstance(value, list):
            self.errors.add(field, f"The {label(field)} must be an array.")
            return
        ids = []
        for index, item in enumerate(value):
            nested = isinstance(item, dict)
            item_id = _as_int(item.get("id")) if nested else _as_int(item)
            if item_id is None or item_id not in table:
                name = f"{field}.{index}.id" if nested else f"{field}.{index}"
                self.errors.add(name, f"The selected {name} is invalid.")
                continue
            ids.append(item_id)
        self.changes.pop(field, None)
        self.changes[stored_as] = ids


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


USER_STRINGS = ("street", "street2", "city", "state", "zip_code", "country", "extension", "avatar_location")


def validate_user(
    data: dict[str, Any], state: SafetyAmpState, mode: str, current: dict[str, Any] | None
) -> tuple[dict[str, Any], Errors]:
    rules = _Rules(data, mode, ("first_name", "last_name", "email"))
    own_id = current["id"] if current else None
    rules.string("emp_id")
    rules.string("first_name")
    rules.string("middle_name")
    rules.string("last_name")
    rules.string("nickname")
    email = rules.string("email")
    if email is not None:
        if not _EMAIL.match(email):
            rules.errors.add("email", "The email must be a valid email address.")
        elif state.email_index.get(email.lower(), own_id) != own_id:
            rules.errors.add("email", "The email has already been taken.")
    rules.one_of("gender", (0, 1))
    rules.date("date_of_birth")
    rules.date("current_hire_date")
    rules.date("rehire_date")
    for field in USER_STRINGS:
        rules.string(field)
    mobile = rules.phone("mobile_phone")
    if mobile is not None and state.mobile_index.get(mobile, own_id) != own_id:
        rules.errors.add("mobile_phone", "The mobile phone has already been taken.")
    rules.phone("work_phone")
    rules.phone("home_phone")
    rules.exists("home_site_id", state.records["sites"])
    rules.exists("current_title_id", state.records["user_titles"])
    for field in ("roles", "role_ids"):
        rules.id_list(field, state.records["roles"], "role_ids")
    for field in ("sites", "site_ids"):
        rules.id_list(field, state.records["sites"], "site_ids")
    rules.boolean("system_access")
    rules.boolean("bypass_sso")
    rules.boolean("text_opt_out", as_int=True)
    rules.timezone("timezone")
    if mode == "create" and "role_ids" not in rules.changes:
        rules.changes["role_ids"] = [
            r["id"] for r in state.records["roles"].values() if r.get("account_default") == 1
        ]
    return rules.changes, rules.errors


def validate_site(
    data: dict[str, Any], state: SafetyAmpState, mode: str, current: dict[str, Any] | None
) -> tuple[dict[str, Any], Errors]:
    rules = _Rules(data, mode, ("name", "cluster_id") if mode == "create" else ())
    own_id = current["id"] if current else None
    rules.exists("cluster_id", state.records["site_clusters"])
    rules.string("name")
    for field in (
        "street",
        "street2",
        "city",
        "state",
        "zip_code",
        "country",
        "naics_code",
        "industry_description",
    ):
        rules.string(field)
    rules.timezone("timezone")
    rules.decimal_string("latitude")
    rules.decimal_string("longitude")
    ext_id = rules.string("ext_id")
    if ext_id is not None and state.ext_id_index.get(ext_id, own_id) != own_id:
        rules.errors.add("ext_id", "The site code is already in use.")
    rules.boolean("em_enabled")
    if "em_weather_override" in data:
        rules.changes["em_weather_override"] = data["em_weather_override"]
    return rules.changes, rules.errors


def validate_cluster(
    data: dict[str, Any], state: SafetyAmpState, mode: str, current: dict[str, Any] | None
) -> tuple[dict[str, Any], Errors]:
    rules = _Rules(data, mode, ("name", "parent_cluster_id", "osha_establishment"))
    own_id = current["id"] if current else None
    rules.string("name")
    parent = rules.exists("parent_cluster_id", state.records["site_clusters"])
    if parent is not None and own_id is not None and state.is_cluster_descendant_or_self(parent, own_id):
        rules.changes.pop("parent_cluster_id", None)
        rules.errors.add("parent_cluster_id", "The selected parent cluster id is invalid.")
    code = rules.string("external_code")
    if code is not None and state.cluster_code_index.get(code, own_id) != own_id:
        rules.errors.add("external_code", "The cluster code is already in use.")
    rules.integer("osha_establishment")
    return rules.changes, rules.errors


def validate_title(
    data: dict[str, Any], state: SafetyAmpState, mode: str, current: dict[str, Any] | None
) -> tuple[dict[str, Any], Errors]:
    rules = _Rules(data, mode, ("name",))
    rules.string("name")
    return rules.changes, rules.errors


def validate_asset(
    data: dict[str, Any], state: SafetyAmpState, mode: str, current: dict[str, Any] | None
) -> tuple[dict[str, Any], Errors]:
    required = {"create": ("name", "site_id", "asset_type_id"), "put": ("site_id",)}.get(mode, ())
    rules = _Rules(data, mode, required)
    for field in ("code", "name", "description", "serial", "model"):
        rules.string(field)
    site_id = rules.exists("site_id", state.records["sites"])
    rules.integer("location_id")
    rules.one_of("status", (0, 1))
    type_id = rules.exists("asset_type_id", state.records["asset_types"])
    rules.exists("current_user_id", state.records["users"], as_str=True)
    # Asset types are site-scoped: the asset's site must be its type's site.
    if not rules.errors.has("asset_type_id") and not rules.errors.has("site_id"):
        effective_type = type_id if type_id is not None else (current or {}).get("asset_type_id")
        effective_site = site_id if site_id is not None else (current or {}).get("site_id")
        asset_type = state.records["asset_types"].get(effective_type)
        if (
            asset_type is not None
            and asset_type.get("site_id") is not None
            and effective_site is not None
            and asset_type["site_id"] != effective_site
        ):
            rules.changes.pop("asset_type_id", None)
            rules.errors.add("asset_type_id", "The selected asset type id is invalid.")
    return rules.changes, rules.errors


VALIDATORS = {
    "users": validate_user,
    "sites": validate_site,
    "site_clusters": validate_cluster,
    "user_titles": validate_title,
    "assets": validate_asset,
}
