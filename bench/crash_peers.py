"""What the crash test runs against: the platform peer, a slow link in front of it, and the daemon process.

`SlowLink` forwards every request at once but holds each answer back a little, as a slow network does:
the platform has already done the work (posted the reply) while the daemon is still waiting to hear so.
That widens the window the test cares most about, "posted but not yet recorded", so random kills land
in it often.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.peers import mastodon as mastodon_peer  # noqa: E402
from tests.peers import x as x_peer  # noqa: E402
from tests.peers.x_fake import FakeX  # noqa: E402


@dataclass(frozen=True)
class ServerPost:
    """A post by the brand as the platform shows it."""

    id: str
    in_reply_to_id: str | None
    direct: bool
    text: str


@dataclass
class Peer:
    """One platform for the daemon to talk to, and how the test drives and inspects it."""

    platform: str
    base_url: str  # where the daemon connects (through the slow link)
    brand_handle: str
    account_yaml: str  # the account's extra config lines
    env: dict[str, str]  # the secrets the config names
    post: Callable[[str, str], str]  # (customer, text) -> post id
    brand_posts: Callable[[], list[ServerPost]]
    poll_interval: float  # the fastest the connector allows
    customers: Callable[[int, str], str]  # who posts the i-th mention (given the scenario's customer)


# --- the slow link -----------------------------------------------------------------------------------


class SlowLink:
    """A loopback TCP proxy that delays every chunk of every answer by `delay` seconds."""

    def __init__(self, upstream: str, delay: float) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="slow-link", daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._upstream)
            except OSError:
                if self._closed:
                    return
                continue
            with self._lock:
                self._sockets |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self._delay), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while chunk := source.recv(65536):
                if delay:
                    time.sleep(delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                _close(sock)
            with self._lock:
                self._sockets -= {source, target}


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def slow_link(upstream: str, delay: float) -> Iterator[str]:
    if delay <= 0:
        yield upstream
        return
    link = SlowLink(upstream, delay)
    try:
        yield link.base_url
    finally:
        link.close()


# --- platforms --------------------------------------------------------------------------------------


def mastodon_brand_posts(base_url: str) -> list[ServerPost]:
    """Everything the brand account has posted on a mastodon-mock, direct messages included."""
    with mastodon_peer.client(base_url, mastodon_peer.BRAND) as api:
        me = api.account_verify_credentials()
        found: list[ServerPost] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            found.extend(
                ServerPost(
                    id=str(s["id"]),
                    in_reply_to_id=str(s["in_reply_to_id"]) if s["in_reply_to_id"] else None,
                    direct=s["visibility"] == "direct",
                    text=str(s["content"]),
                )
                for s in page
            )
            page = api.fetch_next(page)
        return found


@contextmanager
def mastodon(workdir: Path, delay: float, front: Callable[[str], str] | None = None) -> Iterator[Peer]:
    """mastodon-mock as a subprocess; the four seeded customers post (each in their own language).

    `front(url)` puts something (the fault proxy) between the slow link and the mock: the URL to link to.
    """
    with (
        mastodon_peer.mastodon_subprocess(workdir / "mastodon") as running,
        slow_link(front(running.base_url) if front else running.base_url, delay) as url,
    ):
        direct = running.base_url
        clients: dict[str, Any] = {}
        with ExitStack() as stack:
            for name in mastodon_peer.CUSTOMERS:
                clients[name] = stack.enter_context(mastodon_peer.client(direct, name))

            def post(customer: str, text: str) -> str:
                return str(clients[customer].status_post(text)["id"])

            yield Peer(
                platform="mastodon",
                base_url=url,
                brand_handle=mastodon_peer.BRAND,
                account_yaml="    access_token: ${BRAND_TOKEN}\n",
                env={"BRAND_TOKEN": mastodon_peer.token_of(mastodon_peer.BRAND)},
                post=post,
                brand_posts=lambda: mastodon_brand_posts(direct),
                poll_interval=1.0,
                customers=lambda _i, suggested: suggested,
            )


@contextmanager
def x(workdir: Path, delay: float, front: Callable[[str], str] | None = None) -> Iterator[Peer]:
    """The stateful fake X behind `prism proxy` (which checks both directions against X's spec).

    X refuses a post identical to an earlier one; every mention comes from its own customer, so no two
    replies are the same words to the same person and none is refused for that.
    """
    if front is not None:
        raise SystemExit("--faults works on Mastodon only")
    if not x_peer.spec_path().is_file() or not x_peer.prism_path().is_file():
        raise SystemExit(f"X needs Prism ({x_peer.prism_path()}) and the spec ({x_peer.spec_path()})")
    spec = json.loads(x_peer.spec_path().read_text(encoding="utf-8"))
    spec["components"]["securitySchemes"]["UserToken"] = {"type": "apiKey", "in": "header", "name": "Authorization"}
    served = workdir / "openapi-v2.159.json"
    served.write_text(json.dumps(spec), encoding="utf-8")
    fake = FakeX()
    fake.start()
    prism = x_peer.PrismProcess(["proxy", "--errors", str(served), fake.base_url], workdir / "prism.log")
    try:
        prism.wait_ready()
        with slow_link(prism.base_url, delay) as url:

            def brand_posts() -> list[ServerPost]:
                return [
                    ServerPost(
                        id=str(p["id"]),
                        in_reply_to_id=next(
                            (r["id"] for r in p.get("referenced_tweets", []) if r["type"] == "replied_to"), None
                        ),
                        direct=False,
                        text=str(p["text"]),
                    )
                    for p in fake.brand_posts()
                ]

            yield Peer(
                platform="x",
                base_url=url,
                brand_handle=fake.brand.username,
                account_yaml="    bearer_token: ${BRAND_TOKEN}\n    tier: pro\n",
                env={"BRAND_TOKEN": str(fake.brand.bearer_token)},
                post=lambda customer, text: fake.post(customer, text),
                brand_posts=brand_posts,
                poll_interval=3.0,  # the "pro" tier's spacing
                customers=lambda i, _suggested: f"customer{i:04d}",
            )
    finally:
        prism.stop()
        fake.stop()


PLATFORMS = {"mastodon": mastodon, "x": x}


# --- the daemon -------------------------------------------------------------------------------------


class Daemon:
    """`carebot run` as a child process, started again after every kill; all lives share one log."""

    def __init__(self, config: Path, env: dict[str, str], log_path: Path) -> None:
        self._config = config
        self._env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env}
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._process: subprocess.Popen[bytes] | None = None
        self._life_starts_at = 0
        self.lives = 0

    def start(self) -> None:
        self.lives += 1
        self._log.flush()
        self._life_starts_at = self.log_path.stat().st_size
        self._log.write(f"--- bench: life {self.lives} ---\n".encode())
        self._log.flush()
        command = [sys.executable, "-m", "bot.cli", "run", "--config", str(self._config)]
        self._process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=self._env)

    def running(self) -> bool:
        """This life got as far as scheduling its cycles."""
        self._log.flush()
        with self.log_path.open("rb") as log:
            log.seek(self._life_starts_at)
            return b"carebot running" in log.read()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive() and self._process is not None else None

    @property
    def exit_status(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or committed."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def terminate(self, grace: float) -> int | None:
        """SIGTERM; the exit status, or None (and a SIGKILL) if it did not stop within `grace` seconds."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def close(self) -> None:
        if self.alive():
            self.kill()
        self._log.close()

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def wait_until(condition: Callable[[], bool], timeout: float, daemon: Daemon | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if daemon is not None and not daemon.alive():
            raise RuntimeError(f"the daemon exited on its own:\n{daemon.log_text()[-3000:]}")
        time.sleep(0.1)
    return condition()
