"""A loopback TCP forwarder with a switch: in front of PostgreSQL it makes an outage on demand.

`down()` cuts every open connection and turns new ones away (accepted, then closed at once: to a client,
the server went away); `up()` lets them through again. The database itself is never touched.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class TcpSwitch:
    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = True
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-switch", daemon=True).start()

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def down(self) -> None:
        with self._lock:
            self._up = False
            cut, self._open = self._open, set()
        for sock in cut:
            _close(sock)

    def up(self, upstream: tuple[str, int] | None = None) -> None:
        """Connections pass again (to `upstream`, if given: a server that came back as another one)."""
        with self._lock:
            self._up = True
            if upstream is not None:
                self._upstream = upstream

    def close(self) -> None:
        self._closed = True
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                up = self._up
            if not up:
                _close(client)
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)
            with self._lock:
                self._open -= {source, target}


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
