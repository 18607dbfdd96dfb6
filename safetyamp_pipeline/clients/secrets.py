"""Where secrets come from: environment variables, or Azure Key Vault when configured.

Callers always ask by the environment-variable name of DESIGN §6 (`SAFETYAMP_TOKEN`,
`SAMSARA_API_TOKEN`, `MS_GRAPH_CLIENT_SECRET`, `SQL_PASSWORD`, ...). With `AZURE_KEY_VAULT_URL` set
the value is read from the vault under the legacy hyphenated secret name (`SAFETYAMP-TOKEN`,
`SAMSARA-API-KEY`, `VISTA-SQL-PASSWORD`, ...) and cached for the life of the source (one run). A
secret the vault does not hold falls back to the environment variable; any other vault failure
(no credential, no permission, vault unreachable) is an error, never a silent fallback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from safetyamp_pipeline.clients.errors import ConfigError

# Environment-variable name → the secret's name in the legacy Key Vault (legacy-service §9.4).
KEY_VAULT_NAMES: dict[str, str] = {
    "SAFETYAMP_TOKEN": "SAFETYAMP-TOKEN",
    "SAMSARA_API_TOKEN": "SAMSARA-API-KEY",
    "MS_GRAPH_CLIENT_ID": "MS-GRAPH-CLIENT-ID",
    "MS_GRAPH_CLIENT_SECRET": "MS-GRAPH-CLIENT-SECRET",
    "MS_GRAPH_TENANT_ID": "MS-GRAPH-TENANT-ID",
    "SQL_SERVER": "SQL-SERVER",
    "SQL_DATABASE": "SQL-DATABASE",
    "SQL_USERNAME": "SQL-USERNAME",
    "SQL_PASSWORD": "VISTA-SQL-PASSWORD",
    "ALERT_EMAIL_FROM": "ALERT-EMAIL-FROM",
    "ALERT_EMAIL_TO": "ALERT-EMAIL-TO",
    "SMTP_USERNAME": "SMTP-USERNAME",
    "SMTP_PASSWORD": "SMTP-PASSWORD",
}


class SecretClientLike(Protocol):
    """What is used of `azure.keyvault.secrets.SecretClient`."""

    def get_secret(self, name: str) -> Any: ...


def key_vault_name(env_name: str) -> str:
    """The Key Vault secret name for an environment-variable name (`A_B` → `A-B` by default)."""
    return KEY_VAULT_NAMES.get(env_name, env_name.replace("_", "-"))


class SecretSource:
    """`get(name)` → the secret's value; `ConfigError` (naming the secret, never a value) if absent."""

    def __init__(
        self,
        env: Mapping[str, str] = os.environ,
        key_vault_url: str | None = None,
        secret_client: SecretClientLike | None = None,
    ) -> None:
        self._env = env
        self.key_vault_url = (key_vault_url or env.get("AZURE_KEY_VAULT_URL") or "").strip() or None
        self._client = secret_client
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()

    @property
    def uses_key_vault(self) -> bool:
        return self.key_vault_url is not None or self._client is not None

    def get(self, name: str) -> str:
        value = self.get_optional(name)
        if value is None:
            if self.uses_key_vault:
                raise ConfigError(
                    f"secret {name} is not set: neither Key Vault secret {key_vault_name(name)} in "
                    f"{self.key_vault_url or 'the configured vault'} nor environment variable {name} holds it"
                )
            raise ConfigError(f"secret {name} is not set: set the environment variable {name}")
        return value

    def get_optional(self, name: str) -> str | None:
        """The secret's value, or None when no source holds a non-empty value."""
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._lookup(name)
            return self._cache[name]

    def resolved_values(self) -> list[str]:
        """Every secret value read so far (to redact them from diagnostic output)."""
        with self._lock:
            return [value for value in self._cache.values() if value]

    def _lookup(self, name: str) -> str | None:
        if self.uses_key_vault:
            value = self._from_vault(name)
            if value:
                return value
        value = (self._env.get(name) or "").strip()
        return value or None

    def _from_vault(self, name: str) -> str | None:
        vault_name = key_vault_name(name)
        try:
            secret = self._vault().get_secret(vault_name)
        except Exception as exc:
            if _is_not_found(exc):
                return None
            # The exception text may quote request details; name its type and the secret only.
            raise ConfigError(
                f"secret {name} could not be read from Key Vault {self.key_vault_url or ''} "
                f"(secret {vault_name}): {type(exc).__name__}"
            ) from None
        value = getattr(secret, "value", None)
        return value.strip() if isinstance(value, str) and value.strip() else None

    def _vault(self) -> SecretClientLike:
        if self._client is None:
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.secrets import SecretClient

            if self.key_vault_url is None:
                raise ConfigError("AZURE_KEY_VAULT_URL is not set")
            self._client = SecretClient(vault_url=self.key_vault_url, credential=DefaultAzureCredential())
        return self._client


def _is_not_found(exc: Exception) -> bool:
    try:
        from azure.core.exceptions import ResourceNotFoundError
    except ImportError:  # pragma: no cover - azure-core ships with azure-keyvault-secrets
        ResourceNotFoundError = ()  # type: ignore[assignment]  # noqa: N806
    return isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", None) == 404
