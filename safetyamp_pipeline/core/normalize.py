"""Normalizers for every value that reaches a SafetyAmp payload or a comparison.

All functions are total: they never raise, whatever they are given, and return None for a value
they cannot use. Each one is idempotent (normalizing a normalized value returns it unchanged), so
the same function can be applied to the desired value and to what SafetyAmp holds before comparing.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from functools import lru_cache
from typing import Literal, TypeAlias

import phonenumbers

# Length caps applied to everything sent (characters, after cleaning).
TEXT_MAX = 255  # names, streets, cities, site/cluster/title names
STATE_MAX = 50
ZIP_MAX = 20
EMAIL_MAX = 254  # RFC 5321 path limit
CODE_MAX = 100  # job numbers / ext_id, cluster codes, asset codes, serials
EMP_ID_MAX = 50
DESCRIPTION_MAX = 2000

MIN_YEAR = 1900
MAX_YEAR = 2100

# C0/C1 controls, line/paragraph separators, lone surrogates, zero-width marks and BOM.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u200b\u200e\u200f\ufeff]")
_SPACE_RE = re.compile(r"\s+")
_ALL_SPACE_RE = re.compile(r"\s+")
_EMAIL_RE = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T].*)?$", re.DOTALL)
_VIN_RE = re.compile(r"^[A-Za-z0-9]{17}$")
_EXTENSION_RE = re.compile(r"\s*(?:(?:x|ext|extn|extension)\.?|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_DIGITS_RE = re.compile(r"\D")
_US_FORMAT_RE = re.compile(r"^(?:\+?1[\s.\-]?)?\(?([2-9]\d{2})\)?[\s.\-]?(\d{3})[\s.\-]?(\d{4})$")
_INT_RE = re.compile(r"^[+]?[0-9]+$")
_SIGNED_INT_RE = re.compile(r"^-?[0-9]+$")

_GENDER_MALE = frozenset({"m", "male", "1", "true", "t"})
_GENDER_FEMALE = frozenset({"f", "female", "0", "2", "false"})

# Validity only needs "some type matches", so the order is free: the types most numbers have come
# first (phonenumbers itself tests them last, as it also names the type).
_NUMBER_TYPE_DESCS = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number",
    "pager", "uan", "voicemail",
)


_Matcher: TypeAlias = tuple[frozenset[int], re.Pattern[str]]


def _desc_matcher(desc: object) -> _Matcher | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return frozenset(getattr(desc, "possible_length", None) or ()), re.compile(f"(?:{pattern})")


def _nanp_tables() -> list[tuple[re.Pattern[str] | None, _Matcher | None, list[_Matcher]]]:
    """Per region of country code 1, in phonenumbers' order: leading-digits pattern, general
    description and number-type descriptions, compiled once."""
    tables = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(1, ()):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if meta is None:
            continue
        leading = re.compile(meta.leading_digits) if meta.leading_digits is not None else None
        types = [m for m in (_desc_matcher(getattr(meta, name, None)) for name in _NUMBER_TYPE_DESCS) if m]
        tables.append((leading, _desc_matcher(meta.general_desc), types))
    return tables


_NANP = _nanp_tables()


def as_text(value: object) -> str | None:
    """The value as a str (numbers rendered, bytes decoded); None for anything else."""
    if type(value) is str:
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return None


def clean_text(value: object, max_len: int = TEXT_MAX) -> str | None:
    """Control characters removed, whitespace runs collapsed to one space, trimmed, capped; empty -> None."""
    text = value if type(value) is str else as_text(value)
    if text is None:
        return None
    if not text.isascii() or not text.isprintable() or "  " in text:
        text = _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text))
    text = text.strip()[:max_len].strip()
    return text or None


def clean_state(value: object) -> str | None:
    text = clean_text(value, STATE_MAX)
    return text.upper() if text else None


def clean_zip(value: object) -> str | None:
    return clean_text(value, ZIP_MAX)


def clean_country(value: object) -> str | None:
    text = clean_text(value, STATE_MAX)
    return text.upper() if text else None


def normalize_title(value: object) -> str | None:
    """Title as sent: trimmed, inner whitespace collapsed to one space."""
    return clean_text(value, TEXT_MAX)


def title_key(value: object) -> str | None:
    """Case- and space-insensitive identity of a title name."""
    text = normalize_title(value)
    return text.casefold() if text else None


def normalize_job(value: object) -> str | None:
    """A Vista job number, trimmed (job numbers look like "12345." and are often padded)."""
    return clean_text(value, CODE_MAX)


def canonical_emp_id(value: object) -> str | None:
    """Employee number as a string; numeric ones without leading zeros ("00123" -> "123")."""
    if type(value) is str and value.isascii() and value.isdigit() and value[0] != "0":
        return value[:EMP_ID_MAX]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer() or value < 0:
            return None
        text = str(int(value))
        return text if len(text) <= EMP_ID_MAX else None
    text = clean_text(value, EMP_ID_MAX)
    if text is None:
        return None
    if _INT_RE.match(text):
        return str(int(text))
    return text


def vista_employee_number(value: object) -> str | None:
    """A Vista `Employee` value (an int column): its canonical string, or None when it is not a number."""
    emp = canonical_emp_id(value)
    if emp is None or not emp.isascii() or not emp.isdigit() or emp == "0":
        return None
    return emp


def clean_email(value: object) -> str | None:
    """All whitespace removed, lower-cased, validated; None when not a valid address."""
    text = as_text(value)
    if text is None:
        return None
    return _email_cached(text)


@lru_cache(maxsize=65536)
def _email_cached(text: str) -> str | None:
    text = _ALL_SPACE_RE.sub("", _CONTROL_RE.sub("", text)).lower()
    if not text or len(text) > EMAIL_MAX or not text.isascii():
        return None
    if not _EMAIL_RE.match(text) or ".." in text.split("@", 1)[1]:
        return None
    return text


def email_key(value: object) -> str | None:
    """Identity used to compare emails (case-insensitive)."""
    cleaned = clean_email(value)
    return cleaned.casefold() if cleaned else None


def normalize_gender(value: object) -> int | None:
    """M/male/1/true/t -> 1, F/female/0/2/false -> 0, anything else -> None. 0 is a value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1 if value else 0
    text = as_text(value)
    if text is None:
        return None
    text = text.strip().lower()
    if text in _GENDER_MALE:
        return 1
    if text in _GENDER_FEMALE:
        return 0
    return None


def parse_date(value: object) -> _dt.date | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, _dt.datetime):
        day = value.date()
    elif isinstance(value, _dt.date):
        day = value
    else:
        text = as_text(value) if isinstance(value, str | bytes | bytearray) else None
        if not text:
            return None
        match = _DATE_RE.match(text.strip())
        if not match:
            return None
        try:
            day = _dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None
    return day


def format_date(value: object) -> str | None:
    """`YYYY-MM-DD` for a date/datetime or a `YYYY-MM-DD[ T]...` string in 1900..2100; else None."""
    if type(value) is str:
        text = value.strip()
        if len(text) >= 10 and text[4] == "-" and text[7] == "-" and (len(text) == 10 or text[10] in " T") and text[:10].isascii():
            # The form the sync store hands dates back in: parse_date's verdict, ~3x faster.
            try:
                day = _dt.date.fromisoformat(text[:10])
            except ValueError:
                return None
            return text[:10] if MIN_YEAR <= day.year <= MAX_YEAR else None
    day = parse_date(value)
    return day.isoformat() if day else None


def is_valid_vin(value: object) -> bool:
    text = as_text(value)
    return bool(text) and bool(_VIN_RE.match(text.strip()))


def normalize_vin(value: object) -> str | None:
    text = as_text(value)
    if text is None:
        return None
    text = text.strip().upper()
    return text if _VIN_RE.match(text) else None


def as_int(value: object) -> int | None:
    """An id-like value as int (ints, digit strings); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = as_text(value)
    if text is None:
        return None
    text = text.strip()
    if len(text) < 19 and _SIGNED_INT_RE.match(text):
        return int(text)
    return None


def as_bool(value: object) -> bool | None:
    """SafetyAmp booleans arrive as bool, 0/1 or "true"/"1" strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = as_text(value)
    if text is None:
        return None
    return text.strip().lower() in {"1", "true", "t", "yes", "y"}


def normalize_phone(value: object, region: str = "US") -> str | None:
    """E.164 for a number `phonenumbers` calls valid, else None.

    A trailing extension (`x12`, `ext. 12`, `#12`) is dropped first; a 10-digit number that
    starts with 0 or 1 is invalid; 11-15 digits not starting with 0/1 and no `+` are tried as
    international (the legacy rule), still subject to validity.
    """
    text = value if type(value) is str else as_text(value)
    if text is None:
        return None
    key = (text, region)
    cached = _PHONE_CACHE.get(key, _UNSEEN)
    if cached is not _UNSEEN:
        return cached  # type: ignore[return-value]
    result = _parse_phone(text, region)
    if len(_PHONE_CACHE) >= _PHONE_CACHE_MAX:
        _PHONE_CACHE.clear()
    _PHONE_CACHE[key] = result
    if result is not None:
        # Idempotent: SafetyAmp holds the E.164 form the sync sent, so comparing it is a cache hit.
        _PHONE_CACHE[(result, region)] = result
    return result


_UNSEEN = object()
_PHONE_CACHE: dict[tuple[str, str], str | None] = {}
_PHONE_CACHE_MAX = 200_000


def _parse_phone(text: str, region: str) -> str | None:
    raw = _CONTROL_RE.sub(" ", text).strip()
    if not raw or len(raw) > 64:
        return None
    raw = _EXTENSION_RE.sub("", raw).strip()
    if region == "US":
        fast = _us_fast_path(raw)
        if fast is not False:
            return fast
    digits = _DIGITS_RE.sub("", raw)
    if not digits or len(digits) > 15:
        return None
    candidates: list[tuple[str, str | None]] = []
    if raw.startswith("+"):
        candidates.append(("+" + digits, None))
    else:
        if len(digits) == 10 and digits[0] in "01":
            return None
        candidates.append((raw, region))
        if 11 <= len(digits) <= 15 and digits[0] not in "01":
            candidates.append(("+" + digits, None))
    for candidate, cand_region in candidates:
        try:
            parsed = phonenumbers.parse(candidate, cand_region)
        except phonenumbers.NumberParseException:
            continue
        except Exception:  # noqa: BLE001 - a library bug must not stop a sync
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def _us_fast_path(raw: str) -> str | None | Literal[False]:
    """Shortcut for common North American formats: the same verdict as `phonenumbers.parse` +
    `is_valid_number` (region lookup over country code 1, then type detection), with the
    library's own metadata compiled once. Returns False when the input is not in such a format."""
    match = _US_FORMAT_RE.match(raw)
    if not match:
        return False
    national = match[1] + match[2] + match[3]
    return "+1" + national if _nanp_valid(national) else None


def _matches(matcher: _Matcher | None, national: str) -> bool:
    if matcher is None:
        return False
    lengths, pattern = matcher
    if lengths and len(national) not in lengths:
        return False
    return pattern.fullmatch(national) is not None


def _type_known(national: str, general: _Matcher | None, types: list[_Matcher]) -> bool:
    return _matches(general, national) and any(_matches(m, national) for m in types)


def _nanp_valid(national: str) -> bool:
    for leading, general, types in _NANP:
        if leading is not None:
            if leading.match(national):
                return _type_known(national, general, types)
        elif _type_known(national, general, types):
            return True
    return False


def asset_key(serial: object) -> str | None:
    """Identity of an asset: its serial, trimmed and upper-cased."""
    text = clean_text(serial, CODE_MAX)
    return text.upper() if text else None


