"""Mastodon's notification stream (server-sent events): each mention the moment the server has it.

A fast path, never the source of truth: a stream does not replay what was posted while it was down, so
whoever reads it must read the REST notifications after every (re)connect (`bot/run/stream.py` does).
The stream is read from the account's `base_url` (`/api/v1/streaming/user/notification`, where Mastodon's
standard nginx setup serves the streaming server; an instance whose streaming server lives elsewhere
redirects there), with its own HTTP session: a cycle's requests never
wait behind it, and closing it from another thread (shutdown) wakes the read at once.

The server sends a comment (`:thump`) every 15 s or so when nothing happens; no byte for `READ_TIMEOUT`
means the connection is dead (a proxy dropped it silently), and the stream ends with `Unavailable`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from connectors.base import (
    AuthFailed,
    BadResponse,
    ConnectorError,
    ConnectorSettings,
    Mention,
    RateLimited,
    Rejected,
    Unavailable,
)

if TYPE_CHECKING:
    import requests

STREAM_PATH = "/api/v1/streaming/user/notification"
READ_TIMEOUT = 60.0  # four missed heartbeats
MAX_REDIRECTS = 3
_SCHEMES = {"https": ("https",), "http": ("http", "https")}  # where a redirect may take the token
MAX_EVENT = 1 << 20  # bytes; an event larger than this is not a notification we could use


class NotificationStream:
    """One connection to the account's notification stream. `events()` yields None once connected (the
    caller's cue to read the REST notifications), then each mention; it ends by raising a ConnectorError.
    `close()` may be called from any thread."""

    def __init__(self, settings: ConnectorSettings, own_id: str) -> None:
        import requests

        self._account = settings.account
        self._url = settings.base_url.rstrip("/") + STREAM_PATH
        self._token = settings.secrets["access_token"]
        self._connect_timeout = settings.timeout
        self._own_id = own_id
        self._session = requests.Session()
        self._response: requests.Response | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def events(self) -> Iterator[Mention | None]:
        response = self._connect()
        try:
            yield None
            for name, data in _sse_events(self._chunks(response)):
                if name != "notification":
                    continue  # status updates, filters changed, deletes: the REST read settles those
                mention = self._mention(data)
                if mention is not None:
                    yield mention
        finally:
            self.close()
        if not self._closed.is_set():
            raise Unavailable(self._message("the server ended the stream"))

    def close(self) -> None:
        """End the connection; a read blocked in another thread returns at once."""
        with self._lock:
            self._closed.set()
            response, self._response = self._response, None
        if response is not None:
            sock = getattr(getattr(response.raw, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # close() alone does not wake a blocked recv()
            response.close()
        self._session.close()

    # --- helpers --------------------------------------------------------------

    def _connect(self) -> requests.Response:
        import requests

        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        url = self._url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._session.get(
                    url,
                    headers=headers,
                    stream=True,
                    timeout=(self._connect_timeout, READ_TIMEOUT),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise Unavailable(self._message(f"cannot connect ({type(exc).__name__})")) from exc
            # An instance whose streaming server has a host of its own answers with a redirect there
            # (Mastodon's Api::V1::StreamingController). Followed here, with the token, because requests
            # drops the Authorization header on a redirect to another host; never from https to http.
            location = response.headers.get("Location") if response.is_redirect else None
            if location is None:
                break
            response.close()
            url = urljoin(url, location)
            if urlsplit(url).scheme not in _SCHEMES.get(urlsplit(self._url).scheme, ("https",)):
                raise BadResponse(self._message("redirected to an address that is not https"))
        status = response.status_code
        if status != 200:
            response.close()
            raise _refusal(status, self._message(f"HTTP {status}"), response.headers.get("Retry-After"))
        with self._lock:
            if self._closed.is_set():
                response.close()
                raise Unavailable(self._message("closed"))
            self._response = response
        return response

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        import requests

        try:
            # chunk_size=None: each piece as the server sends it, never waiting for a buffer to fill.
            yield from response.iter_content(chunk_size=None)
        except (requests.RequestException, OSError, AttributeError, ValueError) as exc:
            # AttributeError/ValueError: urllib3 reading a response closed under it by close().
            if self._closed.is_set():
                return
            raise Unavailable(self._message(f"connection lost ({type(exc).__name__})")) from exc

    def _mention(self, data: str) -> Mention | None:
        """A mention notification as a Mention; None for other types and for what cannot be read (the REST
        read after the next reconnect, or the next poll, sets an unreadable one aside)."""
        from connectors.mastodon import _SHAPE_ERRORS, _to_mention

        try:
            notification: Any = json.loads(data)
            if not isinstance(notification, dict):
                return None
            return _to_mention(notification, self._own_id)
        except (json.JSONDecodeError, *_SHAPE_ERRORS):
            return None

    def _message(self, what: str) -> str:
        return f"mastodon account {self._account!r}: notification stream: {what}"


def _refusal(status: int, message: str, retry_after: str | None) -> ConnectorError:
    if status in (401, 403):
        return AuthFailed(message)
    if status == 404:
        return Rejected(message + " (streaming is not enabled on this server)")
    if status == 429:
        try:
            wait = float(retry_after) if retry_after else 60.0
        except ValueError:
            wait = 60.0
        return RateLimited(message, wait)
    if status >= 500 or status in (408, 425):
        return Unavailable(message)
    return BadResponse(message)


def _sse_events(chunks: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(event name, data) for each server-sent event in the byte stream; comments (heartbeats) skipped.

    The format: lines `event: name` and `data: ...` (several data lines join with newlines), an empty line
    ends the event; a line starting with ":" is a comment. Lines end in LF or CRLF.
    """
    buffer = b""
    name, data = "message", list[str]()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > MAX_EVENT:
            raise BadResponse("notification stream: an event larger than 1 MiB")
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r").decode("utf-8", "replace")
            if not line:
                if data:
                    yield name, "\n".join(data)
                name, data = "message", list[str]()
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
