"""Vista connection settings: URL building, token packing and per-connection token refresh.

No ODBC driver exists here: a fake DBAPI module stands in for pyodbc and records what SQLAlchemy
hands to `connect()`.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import types
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.exc import OperationalError

from safetyamp_pipeline.clients.errors import ConfigError
from safetyamp_pipeline.clients.vista_connect import (
    SQL_COPT_SS_ACCESS_TOKEN,
    SQL_TOKEN_SCOPE,
    access_token_struct,
    build_vista_url,
    create_vista_engine,
    dispose_vista_engines,
)

SERVER_ENV = {"SQL_SERVER": "vista.corp.example,1433", "SQL_DATABASE": "Viewpoint"}


@pytest.fixture(autouse=True)
def _fresh_engine_cache():
    dispose_vista_engines()
    yield
    dispose_vista_engines()


def test_token_struct_is_length_prefixed_utf16le() -> None:
    packed = access_token_struct("eyJ0")
    assert packed == b"\x08\x00\x00\x00e\x00y\x00J\x000\x00"
    assert struct.unpack("<I", packed[:4])[0] == len(packed) - 4
    assert access_token_struct("é")[4:] == "é".encode("utf-16-le")
    with pytest.raises(ConfigError):
        access_token_struct("")


def test_viewpoint_db_url_wins_over_sql_server_settings() -> None:
    url = build_vista_url({**SERVER_ENV, "VIEWPOINT_DB_URL": "sqlite:////data/vista.db"})
    assert url.render_as_string() == "sqlite:////data/vista.db"


def test_sql_auth_url_has_driver_encryption_and_credentials() -> None:
    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "svc_reader", "SQL_PASSWORD": "p;w@rd"}
    url = build_vista_url(env)
    assert url.drivername == "mssql+pyodbc"
    assert (url.host, url.database, url.username, url.password) == (
        "vista.corp.example,1433",
        "Viewpoint",
        "svc_reader",
        "p;w@rd",
    )
    assert dict(url.query) == {
        "driver": "ODBC Driver 18 for SQL Server",
        "Encrypt": "yes",
        "TrustServerCertificate": "yes",
        "MultiSubnetFailover": "yes",
    }
    assert "p;w@rd" not in repr(url)
    odbc = mssql_pyodbc.dialect().create_connect_args(url)[0][0]
    assert odbc.startswith(
        "DRIVER={ODBC Driver 18 for SQL Server};Server=vista.corp.example,1433;Database=Viewpoint"
    )
    assert "UID=svc_reader;PWD={p;w@rd}" in odbc
    assert "Encrypt=yes" in odbc and "TrustServerCertificate=yes" in odbc


def test_sql_password_can_come_from_the_secret_source_and_driver_is_configurable() -> None:
    class Secrets:
        def get_optional(self, name: str) -> str | None:
            return {"SQL_PASSWORD": "from-vault", "SQL_USERNAME": "vault-user"}.get(name)

    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_DRIVER": "{ODBC Driver 17 for SQL Server}"}
    url = build_vista_url(env, Secrets())
    assert (url.username, url.password) == ("vault-user", "from-vault")
    assert url.query["driver"] == "ODBC Driver 17 for SQL Server"


def test_missing_or_bad_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="SQL_SERVER and SQL_DATABASE"):
        build_vista_url({})
    with pytest.raises(ConfigError, match="SQL_DATABASE"):
        build_vista_url({"SQL_SERVER": "x"})
    with pytest.raises(ConfigError, match="SQL_PASSWORD") as exc:
        build_vista_url({**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u"})
    assert "SQL_USERNAME" not in str(exc.value)
    with pytest.raises(ConfigError, match="'kerberos'"):
        build_vista_url({**SERVER_ENV, "SQL_AUTH_MODE": "kerberos"})
    with pytest.raises(ConfigError, match=r"VIEWPOINT_DB_URL=.*\*\*\*") as exc:
        build_vista_url({"VIEWPOINT_DB_URL": "not a url //u:hunter2@h"})
    assert "hunter2" not in str(exc.value)


def test_managed_identity_url_has_no_credentials() -> None:
    url = build_vista_url(SERVER_ENV)  # managed_identity is the default mode
    assert url.username is None and url.password is None


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> types.SimpleNamespace:
        self.scopes.append(scopes)
        return types.SimpleNamespace(token=f"token-{len(self.scopes)}", expires_on=0)


def _fake_pyodbc(calls: list) -> types.ModuleType:
    module: Any = types.ModuleType("fake_pyodbc")
    module.paramstyle = "qmark"
    module.version = "5.3.0"
    module.Error = type("Error", (Exception,), {})
    for name in (
        "Warning",
        "InterfaceError",
        "DatabaseError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    ):
        setattr(module, name, type(name, (module.Error,), {}))
    module.Cursor = type("Cursor", (), {"nextset": lambda self: None})

    def connect(*args, **kwargs):
        calls.append((args, kwargs))
        raise module.OperationalError("no SQL Server in the test sandbox")

    module.connect = connect
    return module


def test_managed_identity_passes_a_fresh_token_to_every_new_connection() -> None:
    calls: list = []
    credential = FakeCredential()
    engine = create_vista_engine(SERVER_ENV, credential=credential, dbapi=_fake_pyodbc(calls))
    for _ in range(2):
        with pytest.raises(OperationalError):
            engine.connect()

    assert credential.scopes == [(SQL_TOKEN_SCOPE,), (SQL_TOKEN_SCOPE,)]
    tokens = [kwargs["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN] for _args, kwargs in calls]
    assert tokens == [access_token_struct("token-1"), access_token_struct("token-2")]
    odbc = calls[0][0][0]
    assert "Trusted_Connection" not in odbc and "UID=" not in odbc and "PWD=" not in odbc
    assert "Server=vista.corp.example,1433" in odbc and "Encrypt=yes" in odbc


def test_sql_auth_sends_no_token() -> None:
    calls: list = []
    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u", "SQL_PASSWORD": "pw"}
    engine = create_vista_engine(env, credential=FakeCredential(), dbapi=_fake_pyodbc(calls))
    with pytest.raises(OperationalError):
        engine.connect()
    args, kwargs = calls[0]
    assert "attrs_before" not in kwargs and "UID=u;PWD=pw" in args[0]


def test_missing_pyodbc_is_a_clear_config_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)  # import pyodbc → ImportError
    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u", "SQL_PASSWORD": "s3cret"}
    with pytest.raises(ConfigError, match="pyodbc") as exc:
        create_vista_engine(env)
    assert "s3cret" not in str(exc.value)


def test_importing_the_vista_modules_does_not_import_pyodbc() -> None:
    code = (
        "import sys\n"
        "from safetyamp_pipeline.clients import vista, vista_connect\n"
        "vista_connect.build_vista_url({'SQL_SERVER': 's', 'SQL_DATABASE': 'd'})\n"
        "assert 'pyodbc' not in sys.modules, 'pyodbc imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sqlite_vista_is_opened_read_only_and_engine_is_shared(tmp_path) -> None:
    path = tmp_path / "vista db.sqlite"
    setup = sa.create_engine(f"sqlite:///{path}")
    with setup.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    setup.dispose()

    env = {"VIEWPOINT_DB_URL": f"sqlite:///{path}"}
    engine = create_vista_engine(env)
    assert create_vista_engine(dict(env)) is engine
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
        with pytest.raises(OperationalError, match="readonly"):
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))


# ------------------------------------------------------------------- connection options (issue 17.1)


def _odbc(env: dict[str, str]) -> str:
    return mssql_pyodbc.dialect().create_connect_args(build_vista_url(env))[0][0]


def test_connection_options_default_to_the_old_services() -> None:
    odbc = _odbc({**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u", "SQL_PASSWORD": "pw"})
    assert "Encrypt=yes" in odbc
    assert "TrustServerCertificate=yes" in odbc
    assert "MultiSubnetFailover=yes" in odbc


def test_encrypt_and_certificate_switches() -> None:
    env = {**SERVER_ENV, "VISTA_SQL_ENCRYPT": "strict", "VISTA_SQL_TRUST_SERVER_CERTIFICATE": "no",
           "VISTA_SQL_MULTI_SUBNET_FAILOVER": "false"}
    odbc = _odbc(env)
    assert "Encrypt=strict" in odbc
    assert "TrustServerCertificate=no" in odbc
    assert "MultiSubnetFailover=no" in odbc
    with pytest.raises(ConfigError, match="VISTA_SQL_TRUST_SERVER_CERTIFICATE='maybe'"):
        build_vista_url({**SERVER_ENV, "VISTA_SQL_TRUST_SERVER_CERTIFICATE": "maybe"})
    with pytest.raises(ConfigError, match="VISTA_SQL_QUERY_TIMEOUT"):
        create_vista_engine({**SERVER_ENV, "VISTA_SQL_QUERY_TIMEOUT": "soon"}, dbapi=_fake_pyodbc([]))


def test_login_timeout_reaches_the_driver() -> None:
    calls: list = []
    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u", "SQL_PASSWORD": "pw"}
    engine = create_vista_engine(env, dbapi=_fake_pyodbc(calls))
    with pytest.raises(OperationalError):
        engine.connect()
    assert calls[0][1]["timeout"] == 30
    dispose_vista_engines()
    engine = create_vista_engine({**env, "VISTA_SQL_LOGIN_TIMEOUT": "5"}, dbapi=_fake_pyodbc(calls))
    with pytest.raises(OperationalError):
        engine.connect()
    assert calls[-1][1]["timeout"] == 5


def test_every_new_connection_gets_the_query_timeout() -> None:
    env = {**SERVER_ENV, "SQL_AUTH_MODE": "sql_auth", "SQL_USERNAME": "u", "SQL_PASSWORD": "pw"}
    for configured, expected in (({}, 60), ({"VISTA_SQL_QUERY_TIMEOUT": "120"}, 120)):
        dispose_vista_engines()
        engine = create_vista_engine({**env, **configured}, dbapi=_fake_pyodbc([]))
        connection = types.SimpleNamespace(timeout=0)
        # Only this module's listener: the dialect's own ones need a real pyodbc connection.
        (listener,) = [fn for fn in engine.pool.dispatch.connect if fn.__name__ == "_set_timeout"]
        listener(connection, None)
        assert connection.timeout == expected


def test_every_sql_setting_can_come_from_key_vault() -> None:
    vault = {"SQL_SERVER": "vault-sql,1433", "SQL_DATABASE": "VaultDB", "SQL_USERNAME": "vu", "SQL_PASSWORD": "vp"}

    class Secrets:
        def get_optional(self, name: str) -> str | None:
            return vault.get(name)

    url = build_vista_url({"SQL_AUTH_MODE": "sql_auth"}, Secrets())
    assert (url.host, url.database, url.username, url.password) == ("vault-sql,1433", "VaultDB", "vu", "vp")
