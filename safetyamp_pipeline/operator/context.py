"""What every command needs: the sync store (opened read-mostly, never created by mistake), the
business settings as the Dagster resources build them, and the one error type the CLI reports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from safetyamp_pipeline.core.settings import SyncSettings
from safetyamp_pipeline.store import StoreError, SyncStore, default_store_url, mask_url
from safetyamp_pipeline.sync.settings_env import SettingsError, sync_settings_from_env

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


class OperatorError(Exception):
    """A problem to report on one line of stderr with an exit code (never a traceback)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other back ends, in-memory or ``file:`` URIs)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - reported by SyncStore with a masked URL
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def open_store(url: str | None = None, env: Mapping[str, str] = os.environ) -> SyncStore:
    """The sync store at ``url`` (default: ``SAFETYAMP_STORE_URL``, else SQLite under
    ``DAGSTER_HOME``). A SQLite file that does not exist is an error, not a new empty store."""
    url = (url or "").strip() or default_store_url(env)
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise OperatorError(
            f"no sync store at {mask_url(url)} (the file does not exist); set SAFETYAMP_STORE_URL or "
            "DAGSTER_HOME as the pipeline has them, or pass --store-url"
        )
    try:
        return SyncStore(url, schema=(env.get("SAFETYAMP_STORE_SCHEMA") or None))
    except StoreError as exc:
        raise OperatorError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - driver missing, bad option...: one masked line
        raise OperatorError(f"cannot open the sync store at {mask_url(url)}: {type(exc).__name__}") from None


def settings_from_env(env: Mapping[str, str] = os.environ) -> SyncSettings:
    """The settings the Dagster resources build from the same environment (sync/settings_env.py)."""
    try:
        return sync_settings_from_env(env)
    except SettingsError as exc:
        raise OperatorError(str(exc)) from None
