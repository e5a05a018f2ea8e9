"""A webhook that takes the connection and never answers, against a real `carebot run`: mentions are still
read and answered at the daemon's pace while the webhook hangs, and SIGTERM still ends the daemon at once;
and the daemon's loop stops cleanly when the alert left hanging cannot be recorded."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer
from sqlalchemy import create_engine, text

from bot.config import load_config
from bot.run.daemon import run_forever
from bot.storage import DatabaseUnavailable
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, client, post_as

pytestmark = pytest.mark.slow  # a real daemon, a real hanging webhook

ROOT = Path(__file__).resolve().parents[1]


class HangingWebhook:
    """Accepts connections, reads what comes, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/T0/B0/not-a-token"
        self.requests = 0
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                if conn.recv(65536):
                    self.requests += 1
            except OSError:
                pass
            self.held.append(conn)  # never answered

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingWebhook]:
    hook = HangingWebhook()
    yield hook
    hook.close()


def _until(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"carebot exited with {process.returncode}: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"not reached; carebot said:\n{process.communicate()[0]}")
        time.sleep(0.2)


def replies_to(base_url: str, post_id: str) -> int:
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        statuses = api.account_statuses(me["id"], limit=40)
    return sum(1 for s in statuses if str(s["in_reply_to_id"]) == post_id and s["visibility"] != "direct")


def test_a_hanging_webhook_delays_neither_reading_nor_sending_nor_shutdown(
    tmp_path: Path, mastodon_server: MockServer, hanging: HangingWebhook
) -> None:
    base = mastodon_server.base_url
    db = tmp_path / "alerts.db"
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{db}",
        accounts=configs.mastodon_account(base, mode="auto"),
        # A webhook request may hang ten minutes: if anything waited for it, this test would notice.
        sections="notify:\n  webhook_url: ${HOOK_URL}\n  timeout: 10m\n  wait_threshold: 1h\n",
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "BRAND_TOKEN": "brand_token",
        "HOOK_URL": hanging.url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = create_engine(f"sqlite:///{db}")
    try:

        def cursor_set() -> bool:
            try:
                with engine.connect() as connection:
                    return connection.execute(text("select cursor from accounts")).scalar() is not None
            except Exception:
                return False

        _until(cursor_set, process)  # the first cycle is done: it reads from now on
        urgent = post_as(base, "alice", "@brand my card was charged twice and the order never came!!")
        _until(lambda: replies_to(base, str(urgent["id"])) == 1, process)
        _until(lambda: hanging.requests >= 1, process)  # the alert's webhook request is out, and hangs

        # While the webhook holds that request open, new mentions are read and answered as usual.
        later = [post_as(base, who, "@brand how do I reach support by email?") for who in ("boris", "dewi")]
        for status in later:
            _until(lambda s=status: replies_to(base, str(s["id"])) == 1, process)
        assert hanging.requests == 1  # one message, never sent again while it hangs

        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]  # the webhook would hold it for ten minutes
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "not-a-token" not in output


def test_shutdown_runs_to_its_end_when_the_alert_in_flight_cannot_be_recorded(
    tmp_path: Path,
    mastodon_server: MockServer,
    hanging: HangingWebhook,
    running_bot: StartBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At shutdown an alert whose webhook request still hangs is recorded as given up. When the database
    refused that write (often the very reason the daemon stops), the error left the shutdown half done: the
    scheduler was not shut down, the worker not signed out, the team not told, and `carebot run` ended in
    a traceback."""
    base = mastodon_server.base_url
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        accounts=configs.mastodon_account(base, mode="auto"),
        sections="notify:\n  webhook_url: ${HOOK_URL}\n  timeout: 10m\n  wait_threshold: 1h\n",
    )
    app = running_bot(load_config(path, {"BRAND_TOKEN": "brand_token", "HOOK_URL": hanging.url}))
    caplog.set_level(logging.INFO, logger="carebot")
    stop, escaped = threading.Event(), []

    def run() -> None:
        try:
            run_forever(app, stop)
        except BaseException as exc:
            escaped.append(exc)

    daemon = threading.Thread(target=run, daemon=True)
    daemon.start()
    try:
        post_as(base, "alice", "@brand my card was charged twice and the order never came!!")
        deadline = time.monotonic() + 30
        while hanging.requests < 1 and time.monotonic() < deadline:  # the alert is out, and hangs
            time.sleep(0.2)
        assert hanging.requests == 1

        def refused(*_args: object, **_kwargs: object) -> int:
            raise DatabaseUnavailable("the server went away")

        monkeypatch.setattr(app.storage.alerts, "abandon", refused)
    finally:
        stop.set()
        daemon.join(timeout=30)
    assert not daemon.is_alive()
    assert escaped == []
    assert "could not record it (the server went away)" in caplog.text
    assert "stopped" in caplog.messages
    with app.storage.db.read() as connection:  # the worker signed out: the others share its accounts at once
        assert connection.execute(text("SELECT count(*) FROM workers")).scalar_one() == 0
