"""The HTTP side of the fake X: a stdlib server on 127.0.0.1 in a thread, and X's error bodies.

It knows nothing about X: each request goes to an `App` (`FakeX`), which answers with a
status, headers, a JSON body and how long to hold the answer back.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

Answer = tuple[int, dict[str, str], dict[str, Any] | None, float]  # status, headers, body, delay


class App(Protocol):
    def handle(self, method: str, target: str, auth: str, body: bytes) -> Answer: ...

    def sleep(self, seconds: float) -> None: ...


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a held-back answer (a timeout test) closed the socket: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Server:
    """`app` served on a free loopback port until `stop()`."""

    def __init__(self, app: App) -> None:
        self._server = _Quiet(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True  # a held-back answer must not block stop()
        self._server.app = app  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-x", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def problem(status: int, detail: str) -> dict[str, Any]:
    """An error body as X sends it (RFC 7807 problem, type about:blank)."""
    titles = {400: "Invalid Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    titles |= {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    title = titles.get(status, "Error")
    # Plus the Error schema's code/message: Prism checks an error answer against the spec's
    # first error schema (Error) whatever its content type says.
    return {
        "title": title,
        "detail": detail or title,
        "type": "about:blank",
        "status": status,
        "code": status,
        "message": detail or title,
    }


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-x/1"

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        app: App = self.server.app  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, answer, delay = app.handle(method, self.path, self.headers.get("Authorization", ""), body)
        if delay:
            app.sleep(delay)
        data = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        is_problem = answer is not None and status >= 400
        self.send_header("Content-Type", "application/problem+json" if is_problem else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `FakeX.requests`, not stderr
