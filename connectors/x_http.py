"""The `requests` session under tweepy: sends its calls to the configured host, with a timeout.

tweepy hard-codes ``https://api.twitter.com`` in ``BaseClient.request``. Swapping the host
here, in the session, rather than in a transport adapter matters for OAuth 1.0a: requests
signs the URL while preparing the request, before any adapter sees it, so the host must
already be the real one or every signature is wrong.

The session also adds the OAuth 2.0 token itself: tweepy logs its request headers at DEBUG
level, so the client only ever holds a placeholder and the token never reaches a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

TWEEPY_HOST = "https://api.twitter.com"
BEARER_PLACEHOLDER = "set-by-carebot-session"


class RoutedSession(requests.Session):
    """A session that rewrites tweepy's host to `base_url` and never waits forever."""

    def __init__(self, base_url: str, timeout: float, bearer_token: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._bearer_token = bearer_token
        self.last_headers: Mapping[str, str] = {}

    def __repr__(self) -> str:
        return f"RoutedSession(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)  # a redirect would carry the token elsewhere
        headers = dict(kwargs.get("headers") or {})
        if headers.get("Authorization") == f"Bearer {BEARER_PLACEHOLDER}":
            headers["Authorization"] = f"Bearer {self._bearer_token}"
            kwargs["headers"] = headers
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = response.headers
        return response
