"""EnvironmentOnceSession: the environment's proxy settings, read once per origin."""

from __future__ import annotations

import pytest
import requests

from safetyamp_pipeline.clients.http import EnvironmentOnceSession


def test_settings_equal_plain_requests_and_are_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "graph.internal")
    session, plain = EnvironmentOnceSession(), requests.Session()
    for url in ("https://api.safetyamp.test/api/users", "https://graph.internal/v1.0/users"):
        assert session.merge_environment_settings(url, {}, None, None, None) == plain.merge_environment_settings(
            url, {}, None, None, None
        )
    proxied = session.merge_environment_settings("https://api.safetyamp.test/x", {}, None, None, None)
    assert proxied["proxies"].get("https") == "http://proxy.internal:3128"
    assert session.merge_environment_settings("https://graph.internal/y", {}, None, None, None)["proxies"].get("https") is None

    monkeypatch.setenv("HTTPS_PROXY", "http://other:1")  # a run's environment does not change; read once
    again = session.merge_environment_settings("https://api.safetyamp.test/api/sites", {}, None, None, None)
    assert again["proxies"].get("https") == "http://proxy.internal:3128"
    explicit = session.merge_environment_settings("https://api.safetyamp.test/a", {"https": "http://x:2"}, None, None, None)
    assert explicit["proxies"]["https"] == "http://x:2"
