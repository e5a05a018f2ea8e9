"""A small HTTP fault proxy on 127.0.0.1, between carebot and a peer (mastodon-mock): it forwards every
request and, where a test says so, changes what goes through.

What mastodon-mock's own faults cannot do, this does on real traffic: change one notification of a real
answer (a lone surrogate in its text, an unparseable date, an account that is null), hide a notification
until a test lets it through (ids are not commit order on a busy server), answer a request with a body of
the wrong shape, or strip a request header (a server that has forgotten an idempotency key).

    with FaultProxy(mastodon.base_url) as proxy:
        proxy.change_json("GET", "/api/v1/notifications", poison_marked)
        ... point carebot at proxy.base_url ...
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

JsonChange = Callable[[Any], Any]
# Hop-by-hop and framing headers: the proxy frames its own answer.
_SKIPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Rule:
    method: str
    path: str  # fnmatch pattern on the path (no query)
    change_json: JsonChange | None = None  # the answer's JSON in, the JSON to send out
    answer: tuple[int, str] | None = None  # (status, raw body) instead of asking the peer
    drop_request_headers: tuple[str, ...] = ()
    lose_answer: bool = False  # forward the request, then drop the connection: the peer did it, nobody heard
    when: Callable[[], bool] | None = None  # applies only when this says so (a rate, say)
    count: int | None = None  # None: for ever
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if method.upper() != self.method.upper() or not fnmatch.fnmatch(path, self.path):
            return False
        return self.when is None or self.when()


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- rules ------------------------------------------------------------------------------------

    def change_json(self, method: str, path: str, change: JsonChange, count: int | None = None) -> Rule:
        """Pass the peer's JSON answer through `change` (which may edit it in place and return it)."""
        return self._add(Rule(method, path, change_json=change, count=count))

    def answer(self, method: str, path: str, status: int, body: str, count: int | None = None) -> Rule:
        """Answer with `body` (raw text, sent as JSON) without asking the peer."""
        return self._add(Rule(method, path, answer=(status, body), count=count))

    def lose_answer(
        self, method: str, path: str, when: Callable[[], bool] | None = None, count: int | None = None
    ) -> Rule:
        """Let the peer do the work, then cut the connection before its answer reaches the client."""
        return self._add(Rule(method, path, lose_answer=True, when=when, count=count))

    def drop_header(self, method: str, path: str, header: str, count: int | None = None) -> Rule:
        """Forward the request without `header` (e.g. a server that forgot an Idempotency-Key)."""
        return self._add(Rule(method, path, drop_request_headers=(header.lower(),), count=count))

    def remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _take(self, method: str, path: str) -> list[Rule]:
        """Every rule that applies to this request, their counts spent."""
        taken = []
        with self._lock:
            for rule in list(self.rules):
                if rule.matches(method, path):
                    rule.hits += 1
                    taken.append(rule)
                    if rule.count is not None and rule.hits >= rule.count:
                        self.rules.remove(rule)
        return taken

    # --- serving ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        proxy = self
        client = httpx.Client(base_url=self.upstream, timeout=60.0)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                proxy._forward(self, client)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._client = client
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _forward(self, handler: BaseHTTPRequestHandler, client: httpx.Client) -> None:
        path = handler.path.split("?", 1)[0]
        rules = self._take(handler.command, path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        canned = next((r.answer for r in rules if r.answer is not None), None)
        if canned is not None:
            self._reply(handler, canned[0], {"Content-Type": "application/json"}, canned[1].encode())
            return
        dropped = {h for r in rules for h in r.drop_request_headers}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _SKIPPED | dropped}
        try:
            answer = client.request(handler.command, handler.path, headers=headers, content=body)
        except httpx.HTTPError:
            handler.close_connection = True
            return
        if any(r.lose_answer for r in rules):
            handler.close_connection = True  # nothing sent back: the client hears a dropped connection
            return
        content = answer.content
        changes = [r.change_json for r in rules if r.change_json is not None]
        if changes and answer.status_code == 200:
            data = json.loads(content)
            for change in changes:
                data = change(data)
            # ensure_ascii: a lone surrogate goes out as the JSON escape "\ud800", as a real server may send.
            content = json.dumps(data).encode()
        out = {k: v for k, v in answer.headers.items() if k.lower() not in _SKIPPED}
        if "link" in answer.headers:  # pagination links name the peer: keep the client on the proxy
            out = {k: v for k, v in out.items() if k.lower() != "link"}
            out["Link"] = answer.headers["link"].replace(self.upstream, self.base_url)
        self._reply(handler, answer.status_code, out, content)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], content: bytes) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout under test) is expected: no traceback for it."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


# --- changes to a mastodon notifications answer -----------------------------------------------------


def notifications_with(marker: str, change: Callable[[dict[str, Any]], None]) -> JsonChange:
    """A change to a notifications answer: `change(notification)` for each one whose post holds `marker`."""

    def apply(data: Any) -> Any:
        for notification in data if isinstance(data, list) else ():
            status = notification.get("status") if isinstance(notification, dict) else None
            if isinstance(status, dict) and marker in str(status.get("content") or ""):
                change(notification)
        return data

    return apply


def hide_notifications(hidden: set[str]) -> JsonChange:
    """A change that leaves out the notifications whose status id is in `hidden` (a test empties the set
    to let them appear): as a server whose transaction has not committed yet serves higher ids first."""

    def apply(data: Any) -> Any:
        if not isinstance(data, list):
            return data
        return [n for n in data if str((n.get("status") or {}).get("id")) not in hidden]

    return apply
