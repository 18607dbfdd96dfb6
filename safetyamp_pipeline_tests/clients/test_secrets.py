from __future__ import annotations

from types import SimpleNamespace

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from safetyamp_pipeline.clients.errors import ConfigError
from safetyamp_pipeline.clients.secrets import SecretSource, key_vault_name


class FakeSecretClient:
    """Answers like azure.keyvault.secrets.SecretClient: get_secret(name).value or a 404 error."""

    def __init__(self, secrets: dict[str, str], fail_with: Exception | None = None) -> None:
        self.secrets = secrets
        self.fail_with = fail_with
        self.calls: list[str] = []

    def get_secret(self, name: str) -> SimpleNamespace:
        self.calls.append(name)
        if self.fail_with is not None:
            raise self.fail_with
        if name not in self.secrets:
            raise ResourceNotFoundError(f"(SecretNotFound) A secret with (name/id) {name} was not found")
        return SimpleNamespace(name=name, value=self.secrets[name])


def test_environment_is_the_source_without_key_vault() -> None:
    source = SecretSource(env={"SAFETYAMP_TOKEN": "tok-env ", "SQL_PASSWORD": "pw"})
    assert not source.uses_key_vault
    assert source.get("SAFETYAMP_TOKEN") == "tok-env"
    assert source.get("SQL_PASSWORD") == "pw"
    assert source.get_optional("SAMSARA_API_TOKEN") is None


def test_missing_secret_names_it_and_never_a_value() -> None:
    source = SecretSource(env={"SAFETYAMP_TOKEN": "tok-secret-value", "SAMSARA_API_TOKEN": "  "})
    with pytest.raises(ConfigError, match="SAMSARA_API_TOKEN") as exc:
        source.get("SAMSARA_API_TOKEN")
    assert "tok-secret-value" not in str(exc.value)


def test_key_vault_uses_the_legacy_hyphenated_names() -> None:
    client = FakeSecretClient({
        "SAFETYAMP-TOKEN": "kv-safetyamp", "SAMSARA-API-KEY": "kv-samsara",
        "MS-GRAPH-CLIENT-SECRET": "kv-graph", "VISTA-SQL-PASSWORD": "kv-sql",
    })
    env = {"SAFETYAMP_TOKEN": "env-safetyamp", "AZURE_KEY_VAULT_URL": "https://vault.vault.azure.net"}
    source = SecretSource(env=env, secret_client=client)

    assert source.uses_key_vault and source.key_vault_url == "https://vault.vault.azure.net"
    assert source.get("SAFETYAMP_TOKEN") == "kv-safetyamp", "the vault wins over the environment"
    assert source.get("SAMSARA_API_TOKEN") == "kv-samsara"
    assert source.get("MS_GRAPH_CLIENT_SECRET") == "kv-graph"
    assert source.get("SQL_PASSWORD") == "kv-sql"
    assert client.calls == ["SAFETYAMP-TOKEN", "SAMSARA-API-KEY", "MS-GRAPH-CLIENT-SECRET", "VISTA-SQL-PASSWORD"]


def test_values_are_cached_for_the_run() -> None:
    client = FakeSecretClient({"SAFETYAMP-TOKEN": "kv"})
    source = SecretSource(env={}, key_vault_url="https://v.vault.azure.net", secret_client=client)
    for _ in range(3):
        assert source.get("SAFETYAMP_TOKEN") == "kv"
    assert client.calls == ["SAFETYAMP-TOKEN"]


def test_secret_absent_from_vault_falls_back_to_env_then_fails_naming_both() -> None:
    client = FakeSecretClient({})
    source = SecretSource(env={"SQL_PASSWORD": "from-env"}, key_vault_url="https://v.vault.azure.net",
                          secret_client=client)
    assert source.get("SQL_PASSWORD") == "from-env"
    with pytest.raises(ConfigError) as exc:
        source.get("SAFETYAMP_TOKEN")
    assert "SAFETYAMP-TOKEN" in str(exc.value) and "SAFETYAMP_TOKEN" in str(exc.value)


def test_vault_failure_is_an_error_not_a_silent_fallback() -> None:
    failure = ClientAuthenticationError("token request for client s3cr3t-detail failed")
    client = FakeSecretClient({"SAFETYAMP-TOKEN": "kv"}, fail_with=failure)
    source = SecretSource(env={"SAFETYAMP_TOKEN": "stale-env"}, key_vault_url="https://v.vault.azure.net",
                          secret_client=client)
    with pytest.raises(ConfigError, match="SAFETYAMP_TOKEN.*ClientAuthenticationError") as exc:
        source.get("SAFETYAMP_TOKEN")
    assert "s3cr3t-detail" not in str(exc.value) and "stale-env" not in str(exc.value)


def test_key_vault_names() -> None:
    assert key_vault_name("SQL_PASSWORD") == "VISTA-SQL-PASSWORD"
    assert key_vault_name("SAMSARA_API_TOKEN") == "SAMSARA-API-KEY"
    assert key_vault_name("SQL_USERNAME") == "SQL-USERNAME"
    assert key_vault_name("SOME_NEW_SECRET") == "SOME-NEW-SECRET"


# Every secret and identifier the old service read from its vault (legacy-service.md §9.4).
LEGACY_VAULT = {
    "SAFETYAMP-TOKEN": "tok",
    "SQL-SERVER": "vista.corp.example,1433",
    "SQL-DATABASE": "Viewpoint",
    "SQL-USERNAME": "svc_reader",
    "VISTA-SQL-PASSWORD": "pw-from-vault",
    "MS-GRAPH-CLIENT-ID": "11111111-2222-3333-4444-555555555555",
    "MS-GRAPH-CLIENT-SECRET": "graph-secret",
    "MS-GRAPH-TENANT-ID": "66666666-7777-8888-9999-000000000000",
    "SAMSARA-API-KEY": "samsara-key",
}


def test_key_vault_mode_reads_every_legacy_vault_entry_for_the_pipeline() -> None:
    from safetyamp_pipeline.clients.vista_connect import build_vista_url

    source = SecretSource(env={}, secret_client=FakeSecretClient(LEGACY_VAULT))
    for env_name in ("SAFETYAMP_TOKEN", "SAMSARA_API_TOKEN", "MS_GRAPH_CLIENT_SECRET"):
        assert source.get(env_name) == LEGACY_VAULT[key_vault_name(env_name)]
    url = build_vista_url({"SQL_AUTH_MODE": "sql_auth"}, source)
    assert (url.host, url.database, url.username, url.password) == (
        "vista.corp.example,1433", "Viewpoint", "svc_reader", "pw-from-vault",
    )  # fmt: skip


def test_graph_resource_takes_its_app_ids_from_the_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    from safetyamp_pipeline.clients import resources

    source = SecretSource(env={}, secret_client=FakeSecretClient(LEGACY_VAULT))
    monkeypatch.setattr(resources, "_secrets", lambda: source)
    client = resources.GraphResource(tenant_id="", client_id="").get_client()
    assert client.tenant_id == LEGACY_VAULT["MS-GRAPH-TENANT-ID"]
    assert client.client_id == LEGACY_VAULT["MS-GRAPH-CLIENT-ID"]
