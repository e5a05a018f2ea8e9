"""Database trouble under a real `carebot run`: loud once, lossless, and never endless.

SQLite files deleted or cut short under the running daemon, a disk too small for the write-ahead log and a
disk that stays full (both made with RLIMIT_FSIZE on the daemon: a write past the limit fails with EFBIG,
as on a full disk; no mount needed), a read-only -shm file, a PostgreSQL outage (a TCP switch in front of
the real server), backends terminated with pg_terminate_backend, and a process that loses the database
between posting a reply and recording it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer
from sqlalchemy import create_engine, text

from bot.config import load_config
from bot.models import ReplyState
from bot.run.daemon import run_forever, run_once
from bot.storage import DatabaseReplaced, Storage
from connectors.base import Mention, PostedReply
from tests import configs
from tests.conftest import StartBot
from tests.peers.daemon import Carebot
from tests.peers.database import POSTGRES_URL, postgres_schema_url
from tests.peers.mastodon import post_as
from tests.peers.tcp_switch import TcpSwitch
from tests.test_faults_mastodon import brand_replies, public_reply

pytestmark = pytest.mark.slow  # real daemons, real database faults

ACCOUNT = "acme-mastodon"
ENV = {"BRAND_TOKEN": "brand_token"}
QUESTION = "@brand how can I contact your support team? is there an email?"
WHO = ("alice", "boris", "dewi", "layla")


class Webhook:
    """A team's webhook on 127.0.0.1: what it was told."""

    def __init__(self) -> None:
        told = self.told = []  # type: list[str]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                told.append(str(json.loads(body).get("text", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def write_config(
    directory: Path,
    base_url: str,
    db_url: str,
    webhook: Webhook | None = None,
    give_up_after: str = "60s",
    poll_interval: str = "1s",
) -> Path:
    notify = f"notify:\n  webhook_url: {webhook.url}\n" if webhook else ""
    sections = "daemon:\n  max_replies_per_author_hour: 100\n  retry_backoff: 200ms\n" + configs.SEPARATE_POSTS + notify
    path = configs.write_config(
        directory,
        db_url=db_url,
        accounts=configs.mastodon_account(base_url, name=ACCOUNT, poll_interval=poll_interval),
        sections=sections,
    )
    text_ = path.read_text(encoding="utf-8").replace(
        f"storage:\n  url: {db_url}\n", f'storage:\n  url: "{db_url}"\n  give_up_after: {give_up_after}\n'
    )
    path.write_text(text_, encoding="utf-8")
    return path


def started(bot: Carebot, db_url: str) -> None:
    """Wait until the daemon has done its first cycle (the cursor is set): it answers from then on."""
    bot.wait_running()

    def cursor_set() -> bool:
        storage = Storage.open(db_url)
        try:
            state = storage.accounts.get(ACCOUNT)
            return state is not None and state.cursor is not None
        finally:
            storage.close()

    bot.wait_for(cursor_set, what="for the first cycle")


def post_many(base: str, count: int, tag: str) -> list[str]:
    return [str(post_as(base, WHO[n % 4], f"{QUESTION} ({tag} {n})")["id"]) for n in range(count)]


def answered_once(base: str, post_ids: list[str]) -> bool:
    replies = brand_replies(base)
    return all(len(replies.get(p, [])) == 1 for p in post_ids)


def assert_answered_once(base: str, post_ids: list[str]) -> None:
    replies = brand_replies(base)
    counts = {p: len(replies.get(p, [])) for p in post_ids}
    assert set(counts.values()) == {1}, counts


def test_the_daemon_stops_once_the_watch_gives_up_whoever_told_it(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    """A cycle that meets trouble the watch gives up on stops the daemon itself. The end of an outage, told
    to the team after a cycle, could meet a replaced file too, and only reported it: the watch gave up, no
    cycle ran again, and the daemon stayed up doing nothing, never restarted by its supervisor. Here the
    trouble is reported the way that path does, and nobody else stops the daemon."""
    db_url = f"sqlite:///{tmp_path / 'carebot.db'}"
    app = running_bot(load_config(write_config(tmp_path, mastodon_server.base_url, db_url), ENV))
    stop = threading.Event()
    daemon = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    daemon.start()
    try:
        time.sleep(1.0)
        assert daemon.is_alive()
        app.watch.failed(DatabaseReplaced("the file was replaced"))  # its answer left unused, as that path did
        daemon.join(timeout=10)
        stopped_by_itself = not daemon.is_alive()
    finally:
        stop.set()
        daemon.join(timeout=15)
    assert stopped_by_itself, "the daemon kept running after the watch gave up on the database"
    assert app.watch.fatal == "the file was replaced"


# --- SQLite: the file deleted under the daemon ---------------------------------------------------------


def test_a_deleted_sqlite_file_stops_the_daemon_with_a_rescued_copy_and_nothing_is_lost(
    tmp_path: Path, mastodon_server: MockServer
) -> None:
    """Before: the daemon ran on the deleted files without a word, and after a restart mentions posted
    meanwhile were never answered and the history was gone."""
    base = mastodon_server.base_url
    database = tmp_path / "carebot.db"
    url = f"sqlite:///{database}"
    config = write_config(tmp_path, base, url)
    bot = Carebot(config, ENV).start()
    try:
        started(bot, url)
        before = post_many(base, 4, "before")
        bot.wait_for(lambda: answered_once(base, before), what="for the first answers")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink()
        during = post_many(base, 4, "during")
        status = bot.wait_exit()
    finally:
        bot.stop()
    assert status == 1
    log = bot.text()
    assert "was deleted while carebot was running" in log and "Traceback" not in log
    (rescued,) = tmp_path.glob("carebot.db.rescued-*")
    assert str(rescued) in log

    refused = Carebot(config, ENV).start()  # the rescued copy is there, the database is not
    assert refused.wait_exit() == 1 and str(rescued) in refused.text()

    shutil.move(rescued, database)
    again = Carebot(config, ENV).start()
    try:
        again.wait_running()
        again.wait_for(lambda: answered_once(base, before + during), what="for every mention to be answered")
    finally:
        assert again.stop() == 0
    assert_answered_once(base, before + during)
    storage = Storage.open(f"sqlite:///{database}")
    try:
        assert len(storage.mentions.all(ACCOUNT)) == 8  # the history is whole
    finally:
        storage.close()


# --- SQLite: a disk too small, then full --------------------------------------------------------------


def test_a_disk_too_small_for_the_write_ahead_log_recovers_and_answers_everything(
    tmp_path: Path, mastodon_server: MockServer
) -> None:
    """No file may grow past 1 MB: the write-ahead log fills before SQLite's own checkpoint (at 1000 pages,
    4 MB) would empty it. Before: every write failed from then on, for ever (mentions never stored, a
    traceback each cycle, no alert, no exit)."""
    base = mastodon_server.base_url
    url = f"sqlite:///{tmp_path / 'carebot.db'}"
    config = write_config(tmp_path, base, url)
    bot = Carebot(config, ENV).start(file_size_limit=1_000_000)
    try:
        started(bot, url)
        posted: list[str] = []
        for burst in range(6):
            posted += post_many(base, 6, f"burst {burst}")
            bot.wait_for(lambda p=list(posted): answered_once(base, p), timeout=90, what=f"for burst {burst}")
    finally:
        assert bot.stop() == 0
    assert_answered_once(base, posted)
    log = bot.text()
    assert "Traceback" not in log
    assert log.count("the database cannot write") <= 2, log  # one line per episode, if any


def test_a_disk_that_stays_full_is_one_line_one_alert_and_an_exit_and_nothing_is_lost(
    tmp_path: Path, mastodon_server: MockServer, webhook: Webhook
) -> None:
    """Before: a traceback every cycle, no alert, no exit, for as long as the disk stayed full."""
    base = mastodon_server.base_url
    url = f"sqlite:///{tmp_path / 'carebot.db'}"
    config = write_config(tmp_path, base, url, webhook, give_up_after="4s")
    bot = Carebot(config, ENV).start()
    try:
        started(bot, url)
        before = post_many(base, 2, "before")
        bot.wait_for(lambda: answered_once(base, before), what="for the first answers")
        bot.limit_file_size(4096)  # nothing can be written past 4 KB of any file: the disk is full
        during = post_many(base, 3, "during")
        status = bot.wait_exit()  # storage.give_up_after is 4 s
    finally:
        bot.stop()
    assert status == 1
    log = bot.text()
    assert "Traceback" not in log
    assert log.count("the database cannot write") == 1, log
    assert "stopping: could not write to the database" in log
    assert len([t for t in webhook.told if "carebot stopped" in t]) == 1  # the team was told, once

    again = Carebot(config, ENV).start()  # room again
    try:
        again.wait_running()
        again.wait_for(lambda: answered_once(base, before + during), what="for every mention")
    finally:
        assert again.stop() == 0
    assert_answered_once(base, before + during)


# --- SQLite: the -shm file cut short, and read-only ----------------------------------------------------


def test_a_shm_file_cut_short_stops_the_daemon_with_a_clear_line_not_sigbus(
    tmp_path: Path, mastodon_server: MockServer
) -> None:
    """Before: the next transaction touched the cut mapping and the process died of SIGBUS, without a
    line in the log."""
    base = mastodon_server.base_url
    database = tmp_path / "carebot.db"
    url = f"sqlite:///{database}"
    # Cut in the middle of a transaction, SQLite itself touches the mapping first: SIGBUS whatever carebot
    # checks. A slower poll keeps the daemon idle, between transactions, most of the time; a cut that still
    # lands in a transaction (the process dies of SIGBUS) is made again, in a new life, up to three times.
    config = write_config(tmp_path, base, url, poll_interval="3s")
    before: list[str] = []
    during: list[str] = []
    for life in range(3):
        bot = Carebot(config, ENV).start()
        try:
            started(bot, url)
            before += post_many(base, 2, f"before {life}")
            bot.wait_for(lambda posted=tuple(before): answered_once(base, list(posted)), what="for the first answers")
            Path(f"{database}-shm").write_bytes(b"")  # cut short: what SQLite has mapped is gone
            during += post_many(base, 2, f"during {life}")
            status = bot.wait_exit()
        finally:
            bot.stop()
        if status != -signal.SIGBUS:
            break
    assert status == 1, f"exit status {status} (-7 is SIGBUS)"
    assert "-shm file was cut short" in bot.text()

    again = Carebot(config, ENV).start()
    try:
        again.wait_running()
        again.wait_for(lambda: answered_once(base, before + during), what="for every mention")
    finally:
        assert again.stop() == 0
    assert_answered_once(base, before + during)


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i: read-only even for root (chmod is not, and tests may run as root)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    return subprocess.run([chattr, "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


def test_a_read_only_shm_file_is_one_clear_line_at_start_and_nothing_is_lost(
    tmp_path: Path, mastodon_server: MockServer
) -> None:
    base = mastodon_server.base_url
    database = tmp_path / "carebot.db"
    url = f"sqlite:///{database}"
    config = write_config(tmp_path, base, url)
    bot = Carebot(config, ENV).start()
    try:
        started(bot, url)
        before = post_many(base, 2, "before")
        bot.wait_for(lambda: answered_once(base, before), what="for the first answers")
    finally:
        assert bot.stop() == 0
    shm = Path(f"{database}-shm")
    shm.write_bytes(b"\0" * 32768)
    if not _immutable(shm, True):
        pytest.skip("cannot make a file read-only for this user here (chattr +i)")
    try:
        during = post_many(base, 2, "during")
        refused = Carebot(config, ENV).start()
        assert refused.wait_exit() == 1
        lines = refused.text().splitlines()
        assert any("cannot use the database" in line and "read" in line for line in lines), lines
        assert "Traceback" not in refused.text()
    finally:
        _immutable(shm, False)
    again = Carebot(config, ENV).start()
    try:
        again.wait_running()
        again.wait_for(lambda: answered_once(base, before + during), what="for every mention")
    finally:
        assert again.stop() == 0


# --- PostgreSQL: an outage, and backends terminated ---------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def switch() -> Iterator[TcpSwitch]:
    host, port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0].split(":")
    running = TcpSwitch(host, int(port))
    yield running
    running.close()


def through(switch: TcpSwitch, url: str) -> str:
    """The schema's URL, through the switch."""
    address = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    return url.replace(address, f"127.0.0.1:{switch.port}")


def test_a_postgresql_outage_is_one_line_when_it_begins_one_when_it_ends_and_nothing_is_lost(
    tmp_path: Path, mastodon_server: MockServer, pg_schema: str, switch: TcpSwitch
) -> None:
    """Before: APScheduler logged "Job raised an exception" with a traceback every second (the account's
    row was read outside the cycle's error handling)."""
    base = mastodon_server.base_url
    config = write_config(tmp_path, base, through(switch, pg_schema))
    bot = Carebot(config, ENV).start()
    try:
        started(bot, pg_schema)
        before = post_many(base, 3, "before")
        bot.wait_for(lambda: answered_once(base, before), what="for the first answers")
        switch.down()
        during = post_many(base, 4, "during")
        time.sleep(4)  # an outage of a few seconds
        switch.up()
        bot.wait_for(lambda: answered_once(base, before + during), what="for every mention")
        assert "Job raised an exception" not in bot.text() and "Traceback" not in bot.text()
        bot.wait_for(lambda: "the database is back" in bot.text(), what="for the line saying so")
    finally:
        assert bot.stop() == 0
    assert_answered_once(base, before + during)
    log = bot.text()
    assert "Job raised an exception" not in log and "Traceback" not in log
    assert log.count("WARNING carebot.database") == 2, log  # one line when it began, one when it ended
    assert log.count("cannot reach the database") == 1 and log.count("the database is back") == 1, log


def test_health_is_degraded_during_an_outage_and_ok_after(
    tmp_path: Path, mastodon_server: MockServer, pg_schema: str, switch: TcpSwitch, running_bot: StartBot
) -> None:
    config = load_config(write_config(tmp_path, mastodon_server.base_url, through(switch, pg_schema)), ENV)
    app = running_bot(config)
    assert app.watch.state().status == "ok"
    switch.down()
    (report,) = run_once(app)
    state = app.watch.state()
    assert report.database_trouble and state.status == "degraded" and state.trouble == "unavailable"
    assert state.since is not None
    switch.up()
    time.sleep(1.1)  # the watch's first backoff
    run_once(app)
    app.watch.settled()
    assert app.watch.state().status == "ok"


class _LosesTheDatabaseAfterPosting:
    """The real connector, except that right after the first reply is posted the database goes away, so
    carebot cannot record it: the claim stays, in this very process's name."""

    def __init__(self, connector: Any, switch: TcpSwitch) -> None:
        self._connector, self._switch = connector, switch
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)

    def reply(self, mention: Mention, text_: str, idempotency_key: str) -> PostedReply:
        posted: PostedReply = self._connector.reply(mention, text_, idempotency_key)
        if not self.cut:
            self.cut = True
            self._switch.down()
        return posted


def test_after_the_database_comes_back_a_process_recognises_its_own_claim_at_once(
    tmp_path: Path, mastodon_server: MockServer, pg_schema: str, switch: TcpSwitch, running_bot: StartBot
) -> None:
    """Before: the process waited out its own 120 s lease before resolving the reply it had posted."""
    base = mastodon_server.base_url
    app = running_bot(load_config(write_config(tmp_path, base, through(switch, pg_schema)), ENV))
    lossy = _LosesTheDatabaseAfterPosting(app.connectors[ACCOUNT], switch)
    app.connectors[ACCOUNT] = lossy
    post_id = str(post_as(base, "alice", QUESTION)["id"])
    (lost,) = run_once(app)
    assert lossy.cut
    switch.up()
    (report,) = run_once(app)  # the next cycle, well within the 120 s lease
    assert report.sent.found_existing == 1
    assert lost.database_trouble
    reply = public_reply(app, post_id)
    assert reply.state is ReplyState.SENT
    (on_server,) = brand_replies(base)[post_id]
    assert reply.platform_post_id == str(on_server["id"])


def test_backends_terminated_again_and_again_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, mastodon_server: MockServer, pg_schema: str
) -> None:
    base = mastodon_server.base_url
    name = f"carebot-{uuid.uuid4().hex[:12]}"  # only this daemon's backends are terminated
    config = write_config(tmp_path, base, f"{pg_schema}&application_name={name}")
    bot = Carebot(config, ENV).start()
    admin = create_engine(POSTGRES_URL)
    killed = 0
    try:
        started(bot, pg_schema)
        posted: list[str] = []
        for burst in range(5):
            posted += post_many(base, 4, f"burst {burst}")
            for _ in range(6):
                time.sleep(0.4)
                with admin.begin() as connection:
                    killed += len(
                        connection.execute(
                            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                            {"n": name},
                        ).all()
                    )
        bot.wait_for(lambda: answered_once(base, posted), timeout=90, what="for every mention")
    finally:
        admin.dispose()
        assert bot.stop() == 0
    assert killed >= 10
    assert_answered_once(base, posted)
    assert "Job raised an exception" not in bot.text()
