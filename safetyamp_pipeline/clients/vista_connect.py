"""Connecting to the Vista database: URL building, Entra access tokens, one engine per process.

`VIEWPOINT_DB_URL` (any SQLAlchemy URL, e.g. the sandbox's SQLite file) wins. Otherwise an
`mssql+pyodbc` URL is built from `SQL_SERVER`, `SQL_DATABASE` and `SQL_DRIVER` (each may come from
a `SecretSource`, i.e. Key Vault), with the connection options of the old service (legacy §1.1),
each switchable by environment:

| variable | default | ODBC |
|---|---|---|
| `VISTA_SQL_ENCRYPT` | `yes` (`no`, `strict`) | `Encrypt` |
| `VISTA_SQL_TRUST_SERVER_CERTIFICATE` | `yes` (the on-premises server's certificate) | `TrustServerCertificate` |
| `VISTA_SQL_MULTI_SUBNET_FAILOVER` | `yes` | `MultiSubnetFailover` |
| `VISTA_SQL_LOGIN_TIMEOUT` | `30` s | `SQL_ATTR_LOGIN_TIMEOUT` (pyodbc `timeout=`) |
| `VISTA_SQL_QUERY_TIMEOUT` | `60` s | `SQL_ATTR_QUERY_TIMEOUT` (pyodbc `Connection.timeout`) |

A query that runs longer than the query timeout fails the step (a retryable source read) instead
of hanging the run. Authentication per `SQL_AUTH_MODE`:

* `sql_auth` — `SQL_USERNAME` / `SQL_PASSWORD` (Key Vault `SQL-USERNAME` / `VISTA-SQL-PASSWORD`);
* `managed_identity` (default) — an Entra token for `https://database.windows.net/.default` from
  azure-identity, handed to the ODBC driver as `SQL_COPT_SS_ACCESS_TOKEN` (attribute 1256) and
  fetched again for every new physical connection (tokens expire after about an hour).

`pyodbc` is imported only in `create_vista_engine`, when the URL is for SQL Server.
"""

from __future__ import annotations

import os
import re
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from safetyamp_pipeline.clients.errors import ConfigError
from safetyamp_pipeline.store.urls import mask_url

SQL_COPT_SS_ACCESS_TOKEN = 1256
SQL_TOKEN_SCOPE = "https://database.windows.net/.default"
DEFAULT_SQL_DRIVER = "ODBC Driver 18 for SQL Server"
AUTH_MODES = ("managed_identity", "sql_auth")
_SWITCHES = {"yes": "yes", "true": "yes", "1": "yes", "no": "no", "false": "no", "0": "no"}
_ENCRYPT = {**_SWITCHES, "strict": "strict", "mandatory": "yes", "optional": "no"}
_TRUSTED_CONNECTION = re.compile(r";?\s*Trusted_Connection=Yes", re.IGNORECASE)


class TokenCredential(Protocol):
    """What is used of an azure-identity credential."""

    def get_token(self, *scopes: str) -> Any: ...


class SecretGetter(Protocol):
    def get_optional(self, name: str) -> str | None: ...


def access_token_struct(token: str) -> bytes:
    """The ODBC access-token attribute value: 4-byte little-endian length, then the token in
    UTF-16-LE (no terminator). A malformed struct can crash the driver, so this is the only
    place that builds it."""
    if not token:
        raise ConfigError("the Entra access token for SQL Server is empty")
    encoded = token.encode("utf-16-le")
    return struct.pack("<I", len(encoded)) + encoded


@dataclass(frozen=True)
class ConnectionOptions:
    encrypt: str = "yes"
    trust_server_certificate: str = "yes"
    multi_subnet_failover: str = "yes"
    login_timeout: int = 30
    query_timeout: int = 60

    def odbc_keywords(self) -> dict[str, str]:
        return {
            "Encrypt": self.encrypt,
            "TrustServerCertificate": self.trust_server_certificate,
            "MultiSubnetFailover": self.multi_subnet_failover,
        }


def _choice(env: Mapping[str, str], name: str, default: str, allowed: Mapping[str, str]) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(sorted(set(allowed)))}")
    return allowed[raw]


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{name}={raw!r} must be a whole number of seconds above 0")
    return int(raw)


def connection_options(env: Mapping[str, str]) -> ConnectionOptions:
    return ConnectionOptions(
        encrypt=_choice(env, "VISTA_SQL_ENCRYPT", "yes", _ENCRYPT),
        trust_server_certificate=_choice(env, "VISTA_SQL_TRUST_SERVER_CERTIFICATE", "yes", _SWITCHES),
        multi_subnet_failover=_choice(env, "VISTA_SQL_MULTI_SUBNET_FAILOVER", "yes", _SWITCHES),
        login_timeout=_seconds(env, "VISTA_SQL_LOGIN_TIMEOUT", 30),
        query_timeout=_seconds(env, "VISTA_SQL_QUERY_TIMEOUT", 60),
    )


def auth_mode(env: Mapping[str, str]) -> str:
    mode = (env.get("SQL_AUTH_MODE") or "managed_identity").strip().lower()
    if mode not in AUTH_MODES:
        raise ConfigError(f"SQL_AUTH_MODE={mode!r} is not one of {', '.join(AUTH_MODES)}")
    return mode


def build_vista_url(env: Mapping[str, str], secrets: SecretGetter | None = None) -> URL:
    """The SQLAlchemy URL of the Vista database (see the module docstring)."""
    explicit = (env.get("VIEWPOINT_DB_URL") or "").strip()
    if explicit:
        try:
            return make_url(explicit)
        except ArgumentError:
            raise ConfigError(
                f"VIEWPOINT_DB_URL={mask_url(explicit)} is not a valid SQLAlchemy URL"
            ) from None

    def setting(name: str) -> str | None:
        value = (env.get(name) or "").strip()
        if not value and secrets is not None:
            value = (secrets.get_optional(name) or "").strip()
        return value or None

    server, database = setting("SQL_SERVER"), setting("SQL_DATABASE")
    missing = [name for name, value in (("SQL_SERVER", server), ("SQL_DATABASE", database)) if not value]
    if missing:
        raise ConfigError(f"Vista database not configured: set VIEWPOINT_DB_URL, or {' and '.join(missing)}")
    query = {
        "driver": (env.get("SQL_DRIVER") or DEFAULT_SQL_DRIVER).strip().strip("{}"),
        **connection_options(env).odbc_keywords(),
    }
    mode = auth_mode(env)
    username = password = None
    if mode == "sql_auth":
        username = setting("SQL_USERNAME")
        password = setting("SQL_PASSWORD")
        missing = [n for n, v in (("SQL_USERNAME", username), ("SQL_PASSWORD", password)) if not v]
        if missing:
            raise ConfigError(f"SQL_AUTH_MODE=sql_auth needs {' and '.join(missing)}")
    return URL.create(
        "mssql+pyodbc", username=username, password=password, host=server, database=database, query=query
    )


def install_access_token(engine: Engine, credential: TokenCredential) -> None:
    """Give every new connection of `engine` a fresh Entra access token (do_connect event)."""

    @event.listens_for(engine, "do_connect")
    def _provide_token(dialect: Any, conn_rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if cargs and isinstance(cargs[0], str):
            # A token login must not carry Trusted_Connection/UID/PWD (driver error FA005).
            cargs[0] = _TRUSTED_CONNECTION.sub("", cargs[0])
        token = credential.get_token(SQL_TOKEN_SCOPE).token
        attrs = dict(cparams.get("attrs_before") or {})
        attrs[SQL_COPT_SS_ACCESS_TOKEN] = access_token_struct(token)
        cparams["attrs_before"] = attrs


_engines: dict[tuple[str, str, ConnectionOptions | None], Engine] = {}
_engines_lock = threading.Lock()


def create_vista_engine(
    env: Mapping[str, str] = os.environ,
    credential: TokenCredential | None = None,
    *,
    secrets: SecretGetter | None = None,
    dbapi: ModuleType | None = None,
) -> Engine:
    """The process's engine for Vista (cached per URL and auth mode). `credential` overrides the
    default azure-identity credential; `dbapi` replaces the pyodbc module (tests)."""
    url = build_vista_url(env, secrets)
    mode = auth_mode(env) if url.get_backend_name() == "mssql" else "url"
    options = connection_options(env) if mode != "url" else None
    cache_key = (url.render_as_string(hide_password=False), mode, options)
    with _engines_lock:
        engine = _engines.get(cache_key)
        if engine is None:
            engine = _make_engine(url, mode, credential, dbapi, env)
            _engines[cache_key] = engine
        return engine


def dispose_vista_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def install_query_timeout(engine: Engine, seconds: int) -> None:
    """Every new pyodbc connection of `engine` cancels a statement after `seconds`."""

    @event.listens_for(engine, "connect")
    def _set_timeout(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.timeout = seconds


def _make_engine(
    url: URL,
    mode: str,
    credential: TokenCredential | None,
    dbapi: ModuleType | None,
    env: Mapping[str, str],
) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return create_engine(_read_only_sqlite(url), pool_pre_ping=True)
    if backend != "mssql":
        return create_engine(url, pool_pre_ping=True)
    if dbapi is None:
        try:
            import pyodbc  # only when connecting to SQL Server
        except ImportError as exc:
            raise ConfigError(
                f"cannot connect to {mask_url(url)}: pyodbc or the ODBC driver manager is not "
                f"installed ({exc})"
            ) from None
        dbapi = pyodbc
    options = connection_options(env)
    engine = create_engine(
        url,
        module=dbapi,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"timeout": options.login_timeout},
    )
    install_query_timeout(engine, options.query_timeout)
    if mode == "managed_identity":
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        install_access_token(engine, credential)
    return engine


def _read_only_sqlite(url: URL) -> URL:
    """Open a SQLite file read-only (`mode=ro` URI): the pipeline never writes to Vista."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    return url.set(database=f"file:{quote(database)}", query={**url.query, "mode": "ro", "uri": "true"})
