"""``safetyamp-pipeline doctor``: does every system answer? One line per system.

    safetyamp-pipeline doctor [--instance-dir DIR] [--timeout SECONDS]

Checks, each with the cheapest call that proves access: Vista (one query on ``bPRDP``),
SafetyAmp (one ``GET /api/users?limit=1`` with the token), Samsara (``GET /fleet/vehicles?limit=1``),
Microsoft Graph (a client-credentials token, then one user), Key Vault (when
``AZURE_KEY_VAULT_URL`` is set: the SafetyAmp token read from it), the sync store (opened and
read), the Dagster instance (its run storage read). Exit 0 when all answer, 1 otherwise. A failed
line says what failed and what to check; no line ever holds a secret (every secret value known to
the process is replaced by ``***`` before printing).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from safetyamp_pipeline.clients.errors import ConfigError
from safetyamp_pipeline.clients.secrets import SecretSource, key_vault_name

COMMAND = "doctor"
SECRET_NAMES = ("SAFETYAMP_TOKEN", "SAMSARA_API_TOKEN", "MS_GRAPH_CLIENT_SECRET", "SQL_PASSWORD")


@dataclass(frozen=True)
class Result:
    system: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        status = "OK  " if self.ok else "FAIL"
        text = f"{status} {self.system:<16} {self.detail}"
        return f"{text} - check {self.hint}" if self.hint and not self.ok else text


class CheckFailed(Exception):
    """A check's own failure: ``str`` is what failed, ``hint`` what to check."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _secret_hint(name: str, source: SecretSource) -> str:
    if source.uses_key_vault:
        return f"Key Vault secret {key_vault_name(name)} (or env {name})"
    return f"env {name} (Kubernetes Secret safetyamp-pipeline-secrets)"


class Doctor:
    def __init__(self, env: Mapping[str, str], instance_dir: str | None, timeout: float) -> None:
        self.env = env
        self.instance_dir = instance_dir
        self.timeout = timeout
        self.secrets = SecretSource(env=env)
        self.verify: str | bool = env.get("SAFETYAMP_CA_BUNDLE") or True

    # -- helpers ------------------------------------------------------------------------------

    def _secret(self, name: str) -> str:
        try:
            value = self.secrets.get_optional(name)
        except ConfigError as exc:  # the vault could not be read: names the secret, never a value
            raise CheckFailed(str(exc), f"{_secret_hint(name, self.secrets)} and the Key Vault line") from None
        if not value:
            raise CheckFailed(f"{name} is not set", _secret_hint(name, self.secrets))
        return value

    def _setting(self, name: str, default: str = "") -> str:
        value = (self.env.get(name) or default).strip()
        if not value:
            raise CheckFailed(f"{name} is not set", f"env {name} (helm-values.yaml env)")
        return value.rstrip("/")

    def _get(self, system: str, url: str, hint: str, **kwargs: Any) -> requests.Response:
        try:
            response = requests.get(url, timeout=self.timeout, verify=self.verify, **kwargs)
        except requests.RequestException as exc:
            raise CheckFailed(
                f"no answer from {url.split('?')[0]} ({type(exc).__name__})",
                f"network egress to that host (NetworkPolicy/firewall) and {hint}",
            ) from None
        if response.status_code in (401, 403):
            raise CheckFailed(f"{system} refused the credentials (HTTP {response.status_code})", hint)
        if response.status_code >= 300:
            raise CheckFailed(f"{system} answered HTTP {response.status_code} on {url.split('?')[0]}", hint)
        return response

    def known_secrets(self) -> list[str]:
        values = [self.env.get(name, "") for name in SECRET_NAMES]
        values += self.secrets.resolved_values()
        return [v for v in values if v and len(v) >= 4]

    # -- checks -------------------------------------------------------------------------------

    def vista(self) -> str:
        from sqlalchemy import text

        from safetyamp_pipeline.clients.vista_connect import create_vista_engine, dispose_vista_engines

        company = int(self.env.get("VIEWPOINT_PR_COMPANY") or 1)
        hint = "SQL_SERVER/SQL_DATABASE, SQL_AUTH_MODE and its credentials, VISTA_SQL_* options, egress TCP 1433"
        try:
            engine = create_vista_engine(self.env, secrets=self.secrets)
            with engine.connect() as connection:
                count = connection.execute(
                    text("SELECT COUNT(*) FROM bPRDP WHERE PRCo = :company"), {"company": company}
                ).scalar()
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - driver errors of any kind become one line
            raise CheckFailed(f"query on bPRDP failed ({type(exc).__name__}: {_first_line(exc)})", hint) from None
        finally:
            dispose_vista_engines()
        return f"bPRDP answered: {count} departments in PR company {company}"

    def safetyamp(self) -> str:
        base = self._setting("SAFETYAMP_API_URL", "https://api.safetyamp.com")
        token, fqdn = self._secret("SAFETYAMP_TOKEN"), self._setting("SAFETYAMP_FQDN")
        hint = f"{_secret_hint('SAFETYAMP_TOKEN', self.secrets)} and SAFETYAMP_FQDN"
        self._get(
            "SafetyAmp",
            f"{base}/api/users?limit=1",
            hint,
            headers={"Authorization": f"Bearer {token}", "Fqdn": fqdn, "Accept": "application/json"},
        )
        return f"GET /api/users answered with the token ({fqdn})"

    def samsara(self) -> str:
        base = self._setting("SAMSARA_API_URL", "https://api.samsara.com")
        token = self._secret("SAMSARA_API_TOKEN")
        self._get(
            "Samsara",
            f"{base}/fleet/vehicles?limit=1",
            _secret_hint("SAMSARA_API_TOKEN", self.secrets),
            headers={"Authorization": f"Bearer {token}"},
        )
        return "GET /fleet/vehicles answered with the token"

    def graph(self) -> str:
        from safetyamp_pipeline.clients.graph import GraphClient

        tenant = self.env.get("MS_GRAPH_TENANT_ID") or self._secret("MS_GRAPH_TENANT_ID")
        client_id = self.env.get("MS_GRAPH_CLIENT_ID") or self._secret("MS_GRAPH_CLIENT_ID")
        hint = f"{_secret_hint('MS_GRAPH_CLIENT_SECRET', self.secrets)}, the app registration and its User.Read.All permission"
        graph_url = self._setting("MS_GRAPH_API_URL", "https://graph.microsoft.com")
        try:
            client = GraphClient(
                tenant, client_id, self._secret("MS_GRAPH_CLIENT_SECRET"),
                authority_host=self._setting("MS_GRAPH_AUTHORITY_HOST", "https://login.microsoftonline.com"),
                graph_url=graph_url, ca_bundle=self.env.get("SAFETYAMP_CA_BUNDLE") or None,
                max_retries=0,
            )  # fmt: skip
            token = client.access_token()
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - MSAL/network failures become one line
            raise CheckFailed(f"no token ({type(exc).__name__}: {_first_line(exc)})", hint) from None
        self._get("Graph", f"{graph_url}/v1.0/users?$top=1&$select=id", hint, headers={"Authorization": f"Bearer {token}"})
        return "token issued and GET /v1.0/users answered"

    def key_vault(self) -> str:
        if not self.secrets.uses_key_vault:
            return "not configured (AZURE_KEY_VAULT_URL unset): secrets come from the environment"
        try:
            self.secrets.get("SAFETYAMP_TOKEN")
        except Exception as exc:  # noqa: BLE001 - ConfigError names the secret, never a value
            raise CheckFailed(
                _first_line(exc), "the workload identity's 'Key Vault Secrets User' role and AZURE_KEY_VAULT_URL"
            ) from None
        return f"{self.secrets.key_vault_url} answered ({key_vault_name('SAFETYAMP_TOKEN')} read)"

    def store(self) -> str:
        from sqlalchemy import text

        from safetyamp_pipeline.operator.context import open_store

        hint = "SAFETYAMP_STORE_URL (PostgreSQL host, user, password, sslmode) and egress TCP 5432"
        try:
            store = open_store(None, self.env)
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            where = store.masked_url
            store.close()
        except Exception as exc:  # noqa: BLE001 - OperatorError/driver errors become one line
            raise CheckFailed(f"{type(exc).__name__}: {_first_line(exc)}", hint) from None
        return f"{where} answered"

    def dagster_instance(self) -> str:
        from dagster import DagsterInstance

        home = self.instance_dir or self.env.get("DAGSTER_HOME") or ""
        hint = "--instance-dir (the mounted instance ConfigMap), DAGSTER_PG_PASSWORD and the instance database"
        if not home or not (Path(home) / "dagster.yaml").is_file():
            raise CheckFailed(f"no dagster.yaml in {home or '(DAGSTER_HOME unset)'}", hint)
        try:
            instance = DagsterInstance.from_config(home)
            try:
                runs = instance.get_runs_count()
                storage = type(instance.run_storage).__name__
            finally:
                instance.dispose()
        except Exception as exc:  # noqa: BLE001 - storage errors become one line
            raise CheckFailed(f"{type(exc).__name__}: {_first_line(exc)}", hint) from None
        return f"{storage} answered ({runs} runs)"

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("Vista", self.vista),
            ("SafetyAmp", self.safetyamp),
            ("Samsara", self.samsara),
            ("Microsoft Graph", self.graph),
            ("Key Vault", self.key_vault),
            ("sync store", self.store),
            ("Dagster instance", self.dagster_instance),
        ]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def run_checks(env: Mapping[str, str], instance_dir: str | None = None, timeout: float = 15.0) -> list[Result]:
    doctor = Doctor(env, instance_dir, timeout)
    results = []
    for system, check in doctor.checks():
        try:
            results.append(Result(system, True, check()))
        except CheckFailed as exc:
            results.append(Result(system, False, str(exc), exc.hint))
        except Exception as exc:  # noqa: BLE001 - a check's own bug still yields its line
            results.append(Result(system, False, f"{type(exc).__name__}: {_first_line(exc)}", "the logs"))
    secrets = doctor.known_secrets()
    return [
        Result(r.system, r.ok, _redact(r.detail, secrets), _redact(r.hint, secrets)) for r in results
    ]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(COMMAND, help="check that every system answers, one line each (exit 1 if one does not)")
    parser.add_argument("--instance-dir", help="directory holding the instance dagster.yaml (default: DAGSTER_HOME)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per HTTP call (default 15)")
    common(parser)


def run(args: argparse.Namespace, masker: Any) -> int:
    env = dict(os.environ)
    if getattr(args, "store_url", None):
        env["SAFETYAMP_STORE_URL"] = args.store_url
    started = time.monotonic()
    results = run_checks(env, args.instance_dir, args.timeout)
    for result in results:
        print(result.line(), flush=True)
    failed = [r.system for r in results if not r.ok]
    elapsed = time.monotonic() - started
    print(f"{len(results) - len(failed)}/{len(results)} systems answered in {elapsed:.1f} s"
          + (f"; not answering: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
