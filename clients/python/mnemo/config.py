"""Where the daemon is and how to authenticate: arguments, else MNEMO_URL / MNEMO_API_KEY."""

from __future__ import annotations

import os
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "ws://127.0.0.1:8420/v1/ws"


def resolve_url(url: Optional[str] = None) -> str:
    """The WebSocket URL to use.

    Takes `url`, else MNEMO_URL, else the default. An http(s) URL becomes
    ws(s), and a URL without a path gets /v1/ws, so the line mnemod prints
    (`mnemod listening on http://127.0.0.1:PORT`) can be pasted as is.
    """
    url = url or os.environ.get("MNEMO_URL") or DEFAULT_URL
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a ws://, wss:// or http(s):// URL: {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/v1/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def resolve_api_key(api_key: Optional[str] = None) -> Optional[str]:
    """The API key: `api_key`, else MNEMO_API_KEY; None (or empty) means no Authorization header."""
    key = api_key if api_key is not None else os.environ.get("MNEMO_API_KEY")
    return key or None
