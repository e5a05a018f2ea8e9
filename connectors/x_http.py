"""The `requests` session under tweepy: sends its calls to the configured host, with a timeout.

tweepy hard-codes ``https://api.twitter.com`` in ``BaseClient.request``. Swapping the host
here, in the session, rather than in a transport adapter matters for OAuth 1.0a: requests
signs the URL while preparing the request, before any adapter sees it, so the host must
already be the real one or every signature is wrong.

The session also adds the OAuth 2.0 token itself: tweepy logs its request headers at DEBUG
level, so the client only ever holds a placeholder and the token never reaches a log. For
OAuth 1.0a, requests-oauthlib and oauthlib log the consumer key and access token at DEBUG
while signing; `redact_from_logs` masks them in those libraries' records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from bot.logs import Redactor

TWEEPY_HOST = "https://api.twitter.com"
BEARER_PLACEHOLDER = "set-by-carebot-session"
# Libraries under tweepy that put credentials in DEBUG records.
_CHATTY_LOGGERS = (
    "tweepy.client",
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "urllib3.connectionpool",
)


_REDACTOR = Redactor()  # on the libraries' own loggers: they log even where carebot set up no logging


def redact_from_logs(secrets: Iterable[str]) -> None:
    """Mask `secrets` wherever tweepy and the OAuth libraries under it would log them."""
    _REDACTOR.add(secrets)
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


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
