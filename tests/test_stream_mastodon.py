"""Streaming (`stream: true`) against mastodon-mock: a mention is answered at once, not at the next poll;
what was posted while the stream was down is still answered, once; without a stream, polling answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mastodon_mock.testing import MockServer

from bot.config import load_config
from bot.run import lease
from bot.run import stream as stream_module
from bot.run.app import App
from bot.run.daemon import run_forever, run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.daemon import Carebot
from tests.peers.mastodon import BRAND, add_fault, client, post_as
from tests.peers.tcp_switch import TcpSwitch

QUESTION = "@brand how do I reach support? order {n}"
WAIT = 20.0  # seconds a test waits for an answer: a third of the 60 s poll of the streaming accounts
LISTENING = "listening to the notification stream"


def start(tmp_path: Path, base_url: str, running_bot: StartBot, *, poll: str = "60s", stream: bool = True) -> App:
    account = configs.mastodon_account(base_url, poll_interval=poll, extra="    stream: true\n" if stream else "")
    path = configs.write_config(tmp_path, db_url=f"sqlite:///{tmp_path / 'carebot.db'}", accounts=account)
    return running_bot(load_config(path, {"BRAND_TOKEN": "brand_token"}))


@contextmanager
def daemon(app: App) -> Iterator[threading.Event]:
    """`carebot run`'s loop in a thread, stopped (as by SIGTERM) when the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive(), "the daemon did not stop"


def replies_to(base_url: str) -> dict[str, int]:
    """How many public replies of the brand answer each status."""
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        found: dict[str, int] = {}
        page = api.account_statuses(me["id"], limit=40)
        while page:
            for status in page:
                target = str(status["in_reply_to_id"])
                found[target] = found.get(target, 0) + 1
            page = api.fetch_next(page)
        return found


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting {what}"
        time.sleep(0.1)


def post(base_url: str, n: int, who: str = "alice") -> str:
    return str(post_as(base_url, who, QUESTION.format(n=n))["id"])


@pytest.fixture
def stream_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="carebot")
    return caplog


def test_a_streamed_mention_is_answered_before_the_poll(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, stream_log: pytest.LogCaptureFixture
) -> None:
    base = mastodon_server.base_url
    app = start(tmp_path, base, running_bot)
    with daemon(app):
        wait_until(lambda: LISTENING in stream_log.text, "for the stream")
        posted = [post(base, n, who) for n, who in enumerate(("alice", "boris", "dewi"))]
        wait_until(lambda: all(p in replies_to(base) for p in posted), "for the streamed mentions' replies")
    run_once(app)  # a poll reads them again after the stream answered them: nothing is posted twice
    replies = replies_to(base)
    assert [replies.get(p) for p in posted] == [1, 1, 1]
    assert "brand_token" not in stream_log.text
    metric = app.metrics.registry.get_sample_value
    account = {"account": "acme-mastodon"}
    assert metric("carebot_mentions_total", account) == 3  # stored by the stream; the polls skip them
    assert (metric("carebot_streamed_batches_total", account) or 0) >= 1  # batches, not cycles


def test_mentions_posted_while_the_stream_was_down_are_answered_once(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, stream_log: pytest.LogCaptureFixture
) -> None:
    base = mastodon_server.base_url
    upstream = urlsplit(base)
    assert upstream.hostname is not None and upstream.port is not None
    switch = TcpSwitch(upstream.hostname, upstream.port)  # the network between carebot and its server
    try:
        app = start(tmp_path, f"http://127.0.0.1:{switch.port}", running_bot)
        with daemon(app):
            wait_until(lambda: LISTENING in stream_log.text, "for the stream")
            before = post(base, 1)
            wait_until(lambda: before in replies_to(base), "for the first reply")
            switch.down()  # the stream's connection is cut; streams do not replay
            while_down = [post(base, n, who) for n, who in ((2, "boris"), (3, "dewi"))]
            time.sleep(1.0)
            switch.up()
            wait_until(lambda: all(p in replies_to(base) for p in while_down), "for the fill-in after reconnecting")
            after = post(base, 4, "layla")
            wait_until(lambda: after in replies_to(base), "for a mention streamed after the reconnect")
        run_once(app)
    finally:
        switch.close()
    replies = replies_to(base)
    assert [replies.get(p) for p in (before, *while_down, after)] == [1, 1, 1, 1]
    assert stream_log.text.count(LISTENING) >= 2  # it did reconnect


def test_a_bug_while_answering_the_stream_is_logged_and_the_stream_is_still_answered(
    tmp_path: Path,
    mastodon_server: MockServer,
    running_bot: StartBot,
    stream_log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug after a streamed batch was answered (here: in counting it) ended the stream's worker thread:
    the next streamed mentions piled up unanswered until the next poll (60 s here)."""
    base = mastodon_server.base_url
    app = start(tmp_path, base, running_bot)
    count_batch = app.metrics.stream_batch
    raised: list[str] = []

    def stream_batch(*args: Any, **kwargs: Any) -> None:
        if not raised:  # the first batch only
            raised.append("a bug")
            raise RuntimeError("a bug")
        count_batch(*args, **kwargs)

    monkeypatch.setattr(app.metrics, "stream_batch", stream_batch)
    with daemon(app):
        wait_until(lambda: LISTENING in stream_log.text, "for the stream")
        first = post(base, 1)
        wait_until(lambda: raised and first in replies_to(base), "for the first reply, and the bug after it")
        second = post(base, 2, "boris")
        wait_until(lambda: second in replies_to(base), "for the next streamed mention's reply")
    replies = replies_to(base)
    assert [replies.get(first), replies.get(second)] == [1, 1]
    assert "unexpected error answering the stream" in stream_log.text  # with its traceback


def test_a_bug_renewing_the_streams_lease_is_logged_and_the_lease_still_renewed(
    tmp_path: Path,
    mastodon_server: MockServer,
    running_bot: StartBot,
    stream_log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The thread that renews the stream's lease ended on any error but the database's: the lease then ran
    out while this worker still listened, and another worker would have listened too."""
    monkeypatch.setattr(lease, "STREAM_RENEW", 0.2)  # every 15 s in production
    renew = lease.renew_stream_lease
    calls: list[int] = []

    def renew_once_broken(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return renew(*args, **kwargs)

    monkeypatch.setattr(lease, "renew_stream_lease", renew_once_broken)
    app = start(tmp_path, mastodon_server.base_url, running_bot)
    with daemon(app):
        wait_until(lambda: LISTENING in stream_log.text, "for the stream")
        wait_until(lambda: len(calls) >= 3, "for the renewals after the bug", timeout=5.0)
    assert "unexpected error renewing the stream's lease" in stream_log.text


def test_of_several_workers_one_listens_and_another_takes_over_when_it_stops(
    tmp_path: Path,
    mastodon_server: MockServer,
    running_bot: StartBot,
    stream_log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers on one database, one streaming account: one listens (the stream's lease) and alone reads
    the account, the other only sends; when the listener stops, the other listens from its next try."""
    monkeypatch.setattr(lease, "STREAM_RETRY", 0.5)  # a waiting worker's tries: 15 s in production
    stream_log.set_level(logging.DEBUG, logger="carebot.lease")
    base = mastodon_server.base_url
    first = start(tmp_path, base, running_bot)
    second = start(tmp_path, base, running_bot)  # the same config, so the same database
    with daemon(first) as first_stops:
        wait_until(lambda: LISTENING in stream_log.text, "for the first worker's stream")
        with daemon(second):
            time.sleep(1.5)  # the second tries the lease three times meanwhile, and runs its first cycle
            assert stream_log.text.count(LISTENING) == 1
            assert "another worker listens to its stream and reads it; sending only" in stream_log.text
            one = post(base, 1)
            wait_until(lambda: one in replies_to(base), "for the streamed reply")
            first_stops.set()  # as by SIGTERM: the first gives its lease back as it stops
            wait_until(lambda: stream_log.text.count(LISTENING) == 2, "for the second worker to listen")
            two = post(base, 2, "boris")
            wait_until(lambda: two in replies_to(base), "for the reply streamed to the second worker")
    replies = replies_to(base)
    assert [replies.get(one), replies.get(two)] == [1, 1]


def test_a_stream_served_elsewhere_is_followed_with_the_token(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, stream_log: pytest.LogCaptureFixture
) -> None:
    """An instance whose streaming server has its own address redirects there; the token goes along
    (requests alone would drop it on the way)."""
    base = mastodon_server.base_url
    elsewhere = f"http://localhost:{urlsplit(base).port}/api/v1/streaming/user"  # another host name, same channel
    add_fault(
        base,
        effect={"type": "status", "status": 301, "headers": {"Location": elsewhere}, "body": {}},
        path="/api/v1/streaming/user/notification",
        count=None,
    )
    app = start(tmp_path, base, running_bot)
    with daemon(app):
        wait_until(lambda: LISTENING in stream_log.text, "for the stream")
        posted = post(base, 1)
        wait_until(lambda: posted in replies_to(base), "for the streamed mention's reply")
    assert "unavailable" not in stream_log.text


@pytest.mark.parametrize("status", [404, 500])
def test_without_a_stream_polling_answers(
    tmp_path: Path,
    mastodon_server: MockServer,
    running_bot: StartBot,
    stream_log: pytest.LogCaptureFixture,
    status: int,
) -> None:
    base = mastodon_server.base_url
    add_fault(base, effect={"type": "status", "status": status}, path="/api/v1/streaming/*", count=None)
    app = start(tmp_path, base, running_bot, poll="1s")
    with daemon(app):
        posted = post(base, 1)
        wait_until(lambda: posted in replies_to(base), "for the polled reply")
        fallback = "the notification stream is unavailable"
        wait_until(lambda: fallback in stream_log.text, "for the fallback to be said")
        later = post(base, 2, "boris")
        wait_until(lambda: later in replies_to(base), "for a reply while polling only")
    replies = replies_to(base)
    assert [replies.get(posted), replies.get(later)] == [1, 1]
    assert stream_log.text.count(fallback) == 1  # said once, however often the stream is retried
    assert f"HTTP {status}" in stream_log.text
    assert LISTENING not in stream_log.text


def test_a_polled_account_opens_no_stream(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, stream_log: pytest.LogCaptureFixture
) -> None:
    base = mastodon_server.base_url
    app = start(tmp_path, base, running_bot, poll="1s", stream=False)
    with daemon(app):
        posted = post(base, 1)
        wait_until(lambda: posted in replies_to(base), "for the polled reply")
    assert "notification stream" not in stream_log.text


def test_sigterm_ends_a_streaming_carebot_run(tmp_path: Path, mastodon_server: MockServer) -> None:
    """The real command: SIGTERM closes the stream and the process exits cleanly (status 0), its token
    never in the log."""
    base = mastodon_server.base_url
    account = configs.mastodon_account(base, poll_interval="60s", extra="    stream: true\n")
    config = configs.write_config(tmp_path, db_url=f"sqlite:///{tmp_path / 'carebot.db'}", accounts=account)
    bot = Carebot(config, {"BRAND_TOKEN": "brand_token"}).start()
    try:
        bot.wait_for(lambda: LISTENING in bot.text(), what="for the stream")
        posted = post(base, 1)
        wait_until(lambda: posted in replies_to(base), "for the streamed mention's reply")
    finally:
        status = bot.stop()
    assert status == 0, bot.text()[-3000:]
    assert "stopped" in bot.text()
    assert "brand_token" not in bot.text()


def test_when_a_stream_cannot_start_what_did_start_stops_and_the_error_ends_the_run(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system refuses the stream's second thread (its listener already runs): `carebot run` must end
    with that error, not leave the scheduler and the listener running with nobody left to stop them."""
    app = start(tmp_path, mastodon_server.base_url, running_bot)
    start_thread = threading.Thread.start

    def refuse_the_streams_worker(thread: threading.Thread) -> None:
        if thread.name.startswith("carebot-streamed-"):
            raise RuntimeError("can't start new thread")
        start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse_the_streams_worker)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_forever(app, threading.Event())
        except BaseException as exc:
            errors.append(exc)

    before = set(threading.enumerate())
    daemon_thread = threading.Thread(target=run)
    daemon_thread.start()
    daemon_thread.join(30)
    assert not daemon_thread.is_alive(), "run_forever did not return"
    assert [str(e) for e in errors] == ["can't start new thread"]
    wait_until(
        lambda: not set(threading.enumerate()) - before - {daemon_thread},
        "for the threads that had started to stop",
        timeout=10,
    )


def test_shutdown_waits_for_the_streams_together_not_one_after_another(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stream may take JOIN_GRACE to finish the reply in flight; with several streaming accounts the
    waits must overlap, or shutdown outlasts a supervisor's grace (Docker's: 10 s) and ends in SIGKILL."""
    app = start(tmp_path, mastodon_server.base_url, running_bot)
    monkeypatch.setattr(stream_module, "JOIN_GRACE", 1.0)
    never = threading.Event()
    monkeypatch.setattr(stream_module.AccountStream, "_listen", lambda self: None)
    monkeypatch.setattr(stream_module.AccountStream, "_keep_lease", lambda self: None)
    monkeypatch.setattr(stream_module.AccountStream, "_work", lambda self: never.wait(30))  # a post that hangs
    stop = threading.Event()
    streams = [stream_module.AccountStream(app, app.config.accounts[0], stop, lambda: None) for _ in range(3)]
    for stream in streams:
        stream.start()
    stop.set()
    started = time.monotonic()
    stream_module.finish_streams(streams)
    waited = time.monotonic() - started
    never.set()
    assert waited < 2.0, f"three hung streams held shutdown up for {waited:.1f} s (one after another: 3 s)"
