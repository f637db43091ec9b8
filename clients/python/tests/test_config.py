"""URL and API key from arguments or MNEMO_URL / MNEMO_API_KEY (no daemon)."""

from __future__ import annotations

import pytest

from mnemo import DEFAULT_URL, AsyncClient, resolve_api_key, resolve_url


def test_url_default_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url() == DEFAULT_URL == "ws://127.0.0.1:8420/v1/ws"
    monkeypatch.setenv("MNEMO_URL", "ws://10.0.0.2:9000/v1/ws")
    assert resolve_url() == "ws://10.0.0.2:9000/v1/ws"
    assert resolve_url("ws://h:1/v1/ws") == "ws://h:1/v1/ws"
    assert AsyncClient().url == "ws://10.0.0.2:9000/v1/ws"


def test_http_urls_as_mnemod_prints_them() -> None:
    assert resolve_url("http://127.0.0.1:8421") == "ws://127.0.0.1:8421/v1/ws"
    assert resolve_url("https://example.org/") == "wss://example.org/v1/ws"
    assert resolve_url("ws://h:1/custom") == "ws://h:1/custom"
    for bad in ("ftp://h/x", "127.0.0.1:8420", "ws://"):
        with pytest.raises(ValueError):
            resolve_url(bad)


def test_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_api_key() is None
    monkeypatch.setenv("MNEMO_API_KEY", "k1")
    assert resolve_api_key() == "k1"
    assert resolve_api_key("k2") == "k2"
    assert resolve_api_key("") is None  # an explicit empty key means none
