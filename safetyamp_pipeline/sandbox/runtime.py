"""Start the whole sandbox: the three emulators, their state files, the certificates, sandbox.env.

``start_sandbox(directory, fixtures=None)`` works in ``directory``:

* with ``fixtures``: every fixture file is checked first (nothing is touched when one is
  malformed), then copied into ``directory``; a fixture file that is absent means an empty state,
  so any older copy in ``directory`` is removed. ``VIEWPOINT_DB_URL`` points at the copy.
* without: whatever ``directory`` holds is used (the emulators' state persists across restarts);
  absent files mean empty states.

It then makes (or reuses) the sandbox CA and server certificate, starts SafetyAmp and Samsara over
HTTP and Graph/login over HTTPS, and writes ``directory/sandbox.env`` with every DESIGN §6
variable pointing at them. ``REQUESTS_CA_BUNDLE`` is deliberately not written: clients get the
sandbox CA through ``SAFETYAMP_CA_BUNDLE`` only, so nothing else loses the system trust store.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetyamp_pipeline.sandbox.certs import SandboxCerts, ensure_certs
from safetyamp_pipeline.sandbox.graph_emulator import GraphEmulator, GraphFixtureError
from safetyamp_pipeline.sandbox.graph_emulator import load_state_file as load_graph_file
from safetyamp_pipeline.sandbox.safetyamp_emulator import SafetyAmpEmulator
from safetyamp_pipeline.sandbox.safetyamp_store import FixtureError as SafetyAmpFixtureError
from safetyamp_pipeline.sandbox.safetyamp_store import SafetyAmpState
from safetyamp_pipeline.sandbox.samsara_emulator import SamsaraEmulator, SamsaraFixtureError
from safetyamp_pipeline.sandbox.samsara_emulator import load_state_file as load_samsara_file
from safetyamp_pipeline.sandbox.server import FaultConfig, ServerThread

VISTA_DB = "vista.db"
SAFETYAMP_JSON = "safetyamp.json"
SAMSARA_JSON = "samsara.json"
GRAPH_JSON = "graph.json"
FIXTURE_FILES = (VISTA_DB, SAFETYAMP_JSON, SAMSARA_JSON, GRAPH_JSON)
ENV_FILE = "sandbox.env"
SERVICES = ("safetyamp", "samsara", "graph")

# Fixed, obviously fake credentials: the sandbox guards nothing.
SANDBOX_CREDENTIALS = {
    "SAFETYAMP_TOKEN": "sandbox-safetyamp-token",
    "SAFETYAMP_FQDN": "sandbox.safetyamp.test",
    "SAMSARA_API_TOKEN": "sandbox-samsara-token",
    "MS_GRAPH_TENANT_ID": "00000000-5a4d-4b0c-8000-000000000001",
    "MS_GRAPH_CLIENT_ID": "00000000-5a4d-4b0c-8000-0000000000c1",
    "MS_GRAPH_CLIENT_SECRET": "sandbox-graph-client-secret",
}

_FIXTURE_ERRORS = (SafetyAmpFixtureError, SamsaraFixtureError, GraphFixtureError)


class SandboxFixtureError(ValueError):
    """A fixture or state file that cannot be used; the message names the file and the problem."""


@dataclass
class Sandbox:
    """A running sandbox. ``env`` is what ``sandbox.env`` holds; ``urls`` maps service -> origin."""

    directory: Path
    env: dict[str, str]
    urls: dict[str, str]
    certs: SandboxCerts
    safetyamp: SafetyAmpEmulator
    samsara: SamsaraEmulator
    graph: GraphEmulator
    servers: dict[str, ServerThread] = field(repr=False)
    env_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.env_path = self.directory / ENV_FILE

    def stop(self) -> None:
        """Stop every server (each flushes its state) and the SafetyAmp saver; safe to call twice."""
        if not self.servers:
            return
        for server in self.servers.values():
            server.stop()
        self.servers = {}
        self.safetyamp.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Fixture files


def check_vista_db(path: Path) -> None:
    """Raise :class:`SandboxFixtureError` unless ``path`` is SQLite with the DESIGN §6 tables and columns."""
    from safetyamp_pipeline.clients.vista_tables import metadata

    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SandboxFixtureError(f"{path}: cannot open as SQLite: {exc}") from exc
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        for table in metadata.tables.values():
            if table.name not in tables:
                raise SandboxFixtureError(f"{path}: table {table.name} is missing")
            present = {row[1] for row in connection.execute(f'PRAGMA table_info("{table.name}")')}
            missing = [c.name for c in table.columns if c.name not in present]
            if missing:
                raise SandboxFixtureError(f"{path}: table {table.name} lacks column(s) {', '.join(missing)}")
    except sqlite3.DatabaseError as exc:
        raise SandboxFixtureError(f"{path}: not a usable SQLite database: {exc}") from exc
    finally:
        connection.close()


def create_empty_vista_db(path: Path) -> None:
    from sqlalchemy import create_engine

    from safetyamp_pipeline.clients.vista_tables import metadata

    engine = create_engine(f"sqlite:///{path}")
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def check_fixture_file(path: Path) -> None:
    """Load ``path`` the way its emulator will; raise :class:`SandboxFixtureError` naming it."""
    try:
        if path.name == VISTA_DB:
            check_vista_db(path)
        elif path.name == SAFETYAMP_JSON:
            SafetyAmpState.from_file(path)
        elif path.name == SAMSARA_JSON:
            load_samsara_file(path)
        elif path.name == GRAPH_JSON:
            load_graph_file(path)
    except _FIXTURE_ERRORS as exc:
        raise SandboxFixtureError(str(exc)) from exc


def _remove_database(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        candidate.unlink(missing_ok=True)


def install_fixtures(directory: Path, fixtures: Path) -> None:
    """Copy the fixture files into ``directory`` after checking all of them."""
    fixtures = Path(fixtures)
    if not fixtures.is_dir():
        raise SandboxFixtureError(f"{fixtures}: fixture directory does not exist")
    present = [fixtures / name for name in FIXTURE_FILES if (fixtures / name).exists()]
    for source in present:
        if not source.is_file():
            raise SandboxFixtureError(f"{source}: not a regular file")
        check_fixture_file(source)
    for name in FIXTURE_FILES:
        source, target = fixtures / name, directory / name
        if target.exists() and source.exists() and source.resolve() == target.resolve():
            continue
        if name == VISTA_DB:
            _remove_database(target)
        else:
            target.unlink(missing_ok=True)
        if source.exists():
            shutil.copyfile(source, target)


# --------------------------------------------------------------------------------------------
# Env file

_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:@+,=%-]*$")


def format_env(env: Mapping[str, str]) -> str:
    lines = ["# Written by safetyamp-sandbox: the product's settings for this running sandbox."]
    for key, value in env.items():
        if _PLAIN_VALUE.match(value):
            lines.append(f"{key}={value}")
        else:
            lines.append(f"{key}='" + value.replace("'", "'\\''") + "'")
    return "\n".join(lines) + "\n"


def load_env_file(path: Path | str) -> dict[str, str]:
    """Parse ``KEY=value`` lines (``#`` comments, optional ``export``, single or double quotes)."""
    env: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}: line {number} is not KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("'\\''", "'")
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        env[key] = value
    return env


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(format_env(env), encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Start


def _faults_for(faults: FaultConfig | Mapping[str, FaultConfig] | None, service: str) -> FaultConfig | None:
    if faults is None or isinstance(faults, FaultConfig):
        return faults
    return faults.get(service)


def start_sandbox(
    directory: Path,
    fixtures: Path | None = None,
    rate_limit: int | None = 60,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    *,
    faults: FaultConfig | Mapping[str, FaultConfig] | None = None,
    samsara_rate_per_second: int | None = 25,
    samsara_empty_pages: bool = False,
    graph_token_lifetime: int = 3600,
    graph_rate_limit: int | None = None,
    safetyamp_max_page_size: int = 100,
) -> Sandbox:
    """Start the three emulators on ``directory`` and write ``directory/sandbox.env``.

    ``rate_limit`` is SafetyAmp's requests per minute (``None`` or 0: unlimited); ``ports`` maps
    ``safetyamp``/``samsara``/``graph`` to a port (0 or absent: any free port); ``safetyamp_max_page_size`` is the largest ``limit``
    SafetyAmp grants (larger ones are clamped silently); ``faults`` is one
    :class:`FaultConfig` for all emulators or a mapping per service. Raises
    :class:`SandboxFixtureError` for a malformed fixture or state file.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    ports = dict(ports or {})
    unknown = sorted(set(ports) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown service(s) in ports: {', '.join(unknown)}")
    if fixtures is not None:
        install_fixtures(directory, Path(fixtures))
    vista_path = directory / VISTA_DB
    if vista_path.exists():
        check_vista_db(vista_path)
    else:
        create_empty_vista_db(vista_path)
    certs = ensure_certs(directory)
    creds = SANDBOX_CREDENTIALS

    try:
        safetyamp = SafetyAmpEmulator(
            directory / SAFETYAMP_JSON,
            creds["SAFETYAMP_TOKEN"],
            creds["SAFETYAMP_FQDN"],
            rate_limit=rate_limit or None,
            faults=_faults_for(faults, "safetyamp"),
            max_page_size=safetyamp_max_page_size,
        )
    except SafetyAmpFixtureError as exc:
        raise SandboxFixtureError(str(exc)) from exc
    try:
        samsara = SamsaraEmulator(
            directory / SAMSARA_JSON,
            creds["SAMSARA_API_TOKEN"],
            rate_per_second=samsara_rate_per_second or None,
            faults=_faults_for(faults, "samsara"),
            inject_empty_pages=samsara_empty_pages,
        )
        graph = GraphEmulator(
            directory / GRAPH_JSON,
            creds["MS_GRAPH_TENANT_ID"],
            creds["MS_GRAPH_CLIENT_ID"],
            creds["MS_GRAPH_CLIENT_SECRET"],
            token_lifetime=graph_token_lifetime,
            faults=_faults_for(faults, "graph"),
            rate_limit=graph_rate_limit or None,
        )
    except (SamsaraFixtureError, GraphFixtureError) as exc:
        safetyamp.close()
        raise SandboxFixtureError(str(exc)) from exc

    tls = {"ssl_certfile": str(certs.cert_path), "ssl_keyfile": str(certs.key_path)}
    plan = [("safetyamp", safetyamp.app, {}), ("samsara", samsara.app, {}), ("graph", graph.app, tls)]
    servers: dict[str, ServerThread] = {}
    try:
        for name, app, options in plan:
            port = ports.get(name, 0)
            try:
                servers[name] = ServerThread(app, host, port, **options).start()
            except OSError as exc:
                raise OSError(
                    exc.errno, f"the {name} emulator cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from exc
    except BaseException:
        for server in servers.values():
            server.stop()
        safetyamp.close()
        raise

    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    urls = {
        name: f"{'https' if name == 'graph' else 'http'}://{url_host}:{server.port}"
        for name, server in servers.items()
    }
    env = sandbox_env(directory, urls, certs)
    sandbox = Sandbox(directory, env, urls, certs, safetyamp, samsara, graph, servers)
    try:
        write_env_file(sandbox.env_path, env)
    except BaseException:
        sandbox.stop()
        raise
    return sandbox


def sandbox_env(directory: Path, urls: Mapping[str, str], certs: SandboxCerts) -> dict[str, str]:
    """Every DESIGN §6 setting the product needs to run against this sandbox."""
    env: dict[str, Any] = {
        "SAFETYAMP_ENV": "sandbox",
        "SAFETYAMP_API_URL": urls["safetyamp"],
        "SAFETYAMP_TOKEN": SANDBOX_CREDENTIALS["SAFETYAMP_TOKEN"],
        "SAFETYAMP_FQDN": SANDBOX_CREDENTIALS["SAFETYAMP_FQDN"],
        "SAMSARA_API_URL": urls["samsara"],
        "SAMSARA_API_TOKEN": SANDBOX_CREDENTIALS["SAMSARA_API_TOKEN"],
        "MS_GRAPH_AUTHORITY_HOST": urls["graph"],
        "MS_GRAPH_API_URL": urls["graph"],
        "MS_GRAPH_TENANT_ID": SANDBOX_CREDENTIALS["MS_GRAPH_TENANT_ID"],
        "MS_GRAPH_CLIENT_ID": SANDBOX_CREDENTIALS["MS_GRAPH_CLIENT_ID"],
        "MS_GRAPH_CLIENT_SECRET": SANDBOX_CREDENTIALS["MS_GRAPH_CLIENT_SECRET"],
        "SAFETYAMP_CA_BUNDLE": str(certs.ca_path),
        "VIEWPOINT_DB_URL": f"sqlite:///{directory / VISTA_DB}",
        "VIEWPOINT_PR_COMPANY": "1",
        "VIEWPOINT_JC_COMPANY": "1",
    }
    return {key: str(value) for key, value in env.items()}
