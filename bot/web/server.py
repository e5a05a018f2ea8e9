"""Serve the approval desk with uvicorn: in the foreground (`carebot web`) or in a background thread
(`carebot run --web`, and tests)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

READY_TIMEOUT = 10.0
LISTEN_BACKLOG = 2048  # uvicorn's own default, which it sets again when it starts serving the socket


def bind(host: str, port: int) -> socket.socket:
    """A listening socket of our own: a taken port is a clear OSError here, and port 0 picks a free one.

    It listens from here on, before the server runs: the URL is printed as soon as this returns, and a
    browser or script that comes at once is queued by the kernel, not refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn raises the signal again after its graceful shutdown, so the process would die "killed by
        # SIGTERM"; carebot stops cleanly and exits with a status instead, as the daemon does.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _server(app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,  # keep carebot's logging (and its secret redaction) in charge
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: a client on the same host
        # could then claim any address per try and never be throttled. Only the proxies named are believed.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or [],
    )
    return _Server(config)


def serve(app: ASGIApp, sock: socket.socket, trusted_proxies: Sequence[str] = ()) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles them in the main thread)."""
    _server(app, trusted_proxies).run(sockets=[sock])


@dataclass
class WebHandle:
    """A desk running in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(app: ASGIApp, host: str, port: int, trusted_proxies: Sequence[str] = ()) -> WebHandle:
    sock = bind(host, port)
    server = _server(app, trusted_proxies)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="carebot-web", daemon=True)
    handle = WebHandle(url_of(sock), server, thread)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            handle.stop(timeout=1.0)
            sock.close()
            raise RuntimeError(f"the approval desk did not start on {handle.url}")
        time.sleep(0.02)
    return handle
