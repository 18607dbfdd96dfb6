"""Where the sync store lives, and URLs that are safe to print."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

STORE_FILE_NAME = "safetyamp_store.db"

_USERINFO_PASSWORD = re.compile(r"(//[^:/@\s]*:)[^@/\s]*@")
# ODBC connection strings (possibly URL-encoded inside odbc_connect=...) carry PWD=... pairs.
_ODBC_PASSWORD = re.compile(r"((?:PWD|Password)(?:=|%3D))[^;&]*", re.IGNORECASE)


def default_store_url(env: Mapping[str, str] = os.environ) -> str:
    """`SAFETYAMP_STORE_URL` when set, else the SQLite file `$DAGSTER_HOME/safetyamp_store.db`
    (`./.dagster_home` when `DAGSTER_HOME` is unset)."""
    explicit = (env.get("SAFETYAMP_STORE_URL") or "").strip()
    if explicit:
        return explicit
    home = (env.get("DAGSTER_HOME") or "").strip() or ".dagster_home"
    path = Path(home).expanduser().resolve() / STORE_FILE_NAME
    return f"sqlite:///{path}"


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by `***` (userinfo and ODBC `PWD=`)."""
    if isinstance(url, URL):
        text = url.render_as_string(hide_password=True)
    else:
        try:
            text = make_url(url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            text = _USERINFO_PASSWORD.sub(r"\1***@", str(url))
    return _ODBC_PASSWORD.sub(r"\1***", text)
