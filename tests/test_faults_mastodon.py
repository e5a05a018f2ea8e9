"""The whole bot under Mastodon failures, injected with mastodon-mock's fault control plane.

Every test ends with what a customer and a support lead would check: on the server, each mention got
exactly one reply, or the reply is parked as failed with its reason in `carebot queue list`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mastodon_mock.config import MastodonMockConfig, RateLimitConfig
from mastodon_mock.testing import MockServer

from bot.cli import main as carebot
from bot.clock import now, use_clock
from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run import daemon as daemon_module
from bot.run.app import App
from bot.run.cycle import CycleReport
from bot.run.daemon import run_forever, run_once
from connectors.base import Unavailable
from connectors.mastodon_limits import retry_after
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, SEED, add_fault, client, free_port, post_as
from tests.peers.tcp_switch import TcpSwitch
from tests.terminal import terminal

pytestmark = pytest.mark.slow  # end-to-end against mastodon-mock with faults

ACCOUNT = "acme-mastodon"
COMPLAINT = "@brand my order never arrived and nobody answers, please help"
QUESTION = "@brand how can I contact your support team? is there an email?"


DAEMON = (
    """daemon:
  max_attempts: 3
  retry_backoff: 100ms
  page_size: 5
  max_replies_per_author_hour: 50
"""
    + configs.SEPARATE_POSTS
)


def write_config(
    directory: Path,
    base_url: str,
    db_url: str,
    *,
    timeout: str = "5s",
    other_account: str = "",
    retry_backoff: str = "100ms",
) -> Path:
    accounts = [configs.mastodon_account(base_url, name=ACCOUNT, timeout=timeout), other_account]
    sections = DAEMON.replace("retry_backoff: 100ms", f"retry_backoff: {retry_backoff}")
    return configs.write_config(directory, db_url=db_url, accounts=accounts, sections=sections)


def load(path: Path) -> Config:
    return load_config(path, {"BRAND_TOKEN": "brand_token"})


@pytest.fixture
def make_app(tmp_path: Path, running_bot: StartBot) -> Callable[..., App]:
    """Start bots that have done their first cycle (reading from now on)."""

    def build(base_url: str, db_url: str | None = None, **options: Any) -> App:
        url = db_url or f"sqlite:///{tmp_path / 'carebot.db'}"
        return running_bot(load(write_config(tmp_path, base_url, url, **options)))

    return build


def brand_replies(base_url: str, *, direct: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The brand's public replies (or, with `direct`, private follow-ups) on the server, by the status
    they answer."""
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        statuses: list[dict[str, Any]] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            statuses.extend(page)
            page = api.fetch_next(page)
    found: dict[str, list[dict[str, Any]]] = {}
    for status in statuses:
        if (status["visibility"] == "direct") == direct:
            found.setdefault(str(status["in_reply_to_id"]), []).append(status)
    return found


def settle(app: App, done: Callable[[], bool], rounds: int = 20, pause: float = 0.15) -> list[CycleReport]:
    """Run cycles until `done()`, letting retry delays and short pauses pass between them."""
    reports: list[CycleReport] = []
    for _ in range(rounds):
        reports.extend(run_once(app))
        if done():
            return reports
        time.sleep(pause)
    raise AssertionError(f"not settled after {rounds} cycles; last reports: {reports[-3:]}")


def public_reply(app: App, post_id: str) -> Any:
    return _stored_reply(app, post_id, "public")


def private_follow_up(app: App, post_id: str) -> Any:
    return _stored_reply(app, post_id, "direct")


def _stored_reply(app: App, post_id: str, kind: str) -> Any:
    (stored,) = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    return next(r for r in app.storage.replies.for_mention(stored.id) if r.kind.value == kind)


def queue_list(config_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert carebot(["queue", "list", "--json", "--config", str(config_path)]) == 0
    items: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return items


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")  # for the CLI, which reads the environment


# --- 429: the account pauses until the reset ---------------------------------------------------------


def test_a_429_while_reading_pauses_until_the_epoch_reset_then_answers_once(
    mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    base = mastodon_server.base_url
    app = make_app(base)
    post_id = str(post_as(base, "alice", QUESTION)["id"])
    reset = int(time.time()) + 2
    add_fault(
        base,
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": str(reset), "Retry-After": "2"}},
        path="/api/v1/notifications",
        methods=["GET"],
    )
    (report,) = run_once(app)
    assert report.paused and report.error and "RateLimited" in report.error
    state = app.storage.accounts.get(ACCOUNT)
    assert state is not None and state.paused_until is not None
    assert "rate limited" in (state.pause_reason or "")
    assert abs(state.paused_until.timestamp() - reset) <= 2.5  # the reset the server named, not a default
    assert brand_replies(base) == {}

    (report,) = run_once(app)  # still paused: not even a request
    assert report.paused and report.fetched == 0

    time.sleep(max(0.0, state.paused_until.timestamp() - time.time()) + 0.05)
    settle(app, lambda: post_id in brand_replies(base))
    run_once(app)
    assert len(brand_replies(base)[post_id]) == 1


def test_a_429_with_an_iso_reset_as_real_mastodon_sends_pauses_until_then(
    mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    base = mastodon_server.base_url
    app = make_app(base)
    post_as(base, "alice", QUESTION)
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=7)
    add_fault(
        base,
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z")}},
        path="/api/v1/notifications",
        methods=["GET"],
    )
    (report,) = run_once(app)
    state = app.storage.accounts.get(ACCOUNT)
    assert report.paused and state is not None and state.paused_until is not None
    assert abs((state.paused_until - reset).total_seconds()) <= 2.5


@pytest.mark.parametrize(
    "header",
    ["{epoch}", "{iso}", "{iso_z}", "{iso_ms}"],
    ids=["epoch", "iso-offset", "iso-z", "iso-fraction"],
)
def test_the_reset_header_is_read_in_both_formats(header: str) -> None:
    reset = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
    clock = reset - timedelta(seconds=30)
    value = header.format(
        epoch=int(reset.timestamp()),
        iso=reset.isoformat(),
        iso_z=reset.isoformat().replace("+00:00", "Z"),
        iso_ms=reset.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    assert retry_after({"X-RateLimit-Reset": value}, now=clock) == pytest.approx(30.0, abs=0.01)


def test_a_429_while_sending_keeps_the_reply_and_its_attempts_then_sends_once(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    base = mastodon_server.base_url
    app = make_app(base, db_url)
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(
        base,
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": str(int(time.time()) + 1)}},
        path="/api/v1/statuses",
        methods=["POST"],
    )
    (report,) = run_once(app)
    assert report.new == 1 and report.paused
    reply = public_reply(app, post_id)
    assert reply.state is ReplyState.APPROVED and reply.attempts == 0  # a 429 is not the reply's fault
    settle(app, lambda: post_id in brand_replies(base), pause=0.3)
    assert len(brand_replies(base)[post_id]) == 1
    assert public_reply(app, post_id).state is ReplyState.SENT


# --- 5xx, timeouts, malformed bodies: retried with backoff, then parked ------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_while_sending_are_retried_and_the_reply_goes_out_once(
    mastodon_server: MockServer, make_app: Callable[..., App], status: int
) -> None:
    base = mastodon_server.base_url
    app = make_app(base)
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(base, effect={"type": "status", "status": status}, path="/api/v1/statuses", methods=["POST"], count=2)
    (report,) = run_once(app)
    # Once, or twice when the 100 ms backoff ran out before the cycle's last round (a loaded machine).
    assert report.sent.retried >= 1 and report.sent.sent == 0
    assert f"{status}" in (public_reply(app, post_id).last_error or "")
    reports = settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT)
    assert report.sent.retried + sum(r.sent.retried for r in reports) == 2  # two 5xx, then success
    assert len(brand_replies(base)[post_id]) == 1


def test_a_reply_that_keeps_failing_is_parked_listed_and_retried_by_a_person(
    tmp_path: Path,
    mastodon_server: MockServer,
    make_app: Callable[..., App],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = mastodon_server.base_url
    app = make_app(base, db_url)
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    rule = add_fault(
        base, effect={"type": "status", "status": 503}, path="/api/v1/statuses", methods=["POST"], count=None
    )
    settle(app, lambda: public_reply(app, post_id).state is ReplyState.FAILED)
    parked = public_reply(app, post_id)
    assert parked.attempts == 3
    assert "gave up after 3 attempts" in (parked.last_error or "") and "503" in (parked.last_error or "")
    for _ in range(3):  # parked means parked: no more requests on its behalf
        run_once(app)
    assert public_reply(app, post_id).state is ReplyState.FAILED
    assert brand_replies(base) == {}

    config_path = tmp_path / "carebot.yaml"
    listed = [i for i in queue_list(config_path, capsys) if i["post_id"] == post_id]
    assert len(listed) == 1 and listed[0]["state"] == "failed"
    assert "503" in listed[0]["last_error"]

    mastodon_server_faults_clear(base, rule["id"])
    assert carebot(["queue", "retry", str(parked.id), "--by", "lead", "--config", str(config_path)]) == 0
    settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT)
    run_once(app)
    assert len(brand_replies(base)[post_id]) == 1
    assert all(i["post_id"] != post_id for i in queue_list(config_path, capsys))


def test_a_reply_waits_out_an_unreachable_instance_without_spending_its_attempts(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    """The instance goes away (a restart, the network) while a reply waits for its retry. Each cycle's
    lookup or post then failed to connect, and each counted as one of the reply's attempts: an outage of a
    minute or two parked every reply that was due, for a person to retry one by one. Now the reply waits
    without spending them, and goes out once when the instance is back."""
    base = mastodon_server.base_url
    upstream = urlsplit(base)
    assert upstream.hostname is not None and upstream.port is not None
    switch = TcpSwitch(upstream.hostname, upstream.port)  # the network between carebot and its instance
    try:
        app = make_app(f"http://127.0.0.1:{switch.port}", db_url)
        post_id = str(post_as(base, "alice", QUESTION)["id"])
        rule = add_fault(
            base, effect={"type": "status", "status": 500}, path="/api/v1/statuses", methods=["POST"], count=None
        )
        run_once(app)
        spent = public_reply(app, post_id).attempts  # 1, or 2 if its retry fell due within the cycle
        assert public_reply(app, post_id).state is ReplyState.APPROVED and 1 <= spent < 3  # of its three
        mastodon_server_faults_clear(base, rule["id"])

        switch.down()
        for _ in range(5):  # more cycles than max_attempts, each after the retry's backoff
            time.sleep(0.5)
            (report,) = run_once(app)
            assert report.failed == "unreachable"
        waiting = public_reply(app, post_id)
        assert waiting.state is ReplyState.APPROVED and waiting.attempts == spent, (waiting.state, waiting.last_error)

        switch.up()
        settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT)
    finally:
        switch.close()
    assert len(brand_replies(base)[post_id]) == 1


def clocked_cycles(app: App) -> Callable[[int], CycleReport]:
    """A cycle of `app` run N minutes after the account's last good cycle (the clock moved, not the network)."""
    state = app.storage.accounts.get(ACCOUNT)
    assert state is not None and state.last_cycle_at is not None
    began = state.last_cycle_at

    def cycle_at(minutes: int) -> CycleReport:
        with use_clock(lambda: began + timedelta(minutes=minutes)):
            (report,) = run_once(app)
        return report

    return cycle_at


def account_alerts(app: App) -> list[tuple[str, str]]:
    return [(a.kind, a.text) for a in app.storage.alerts.undelivered(["account_down", "account_back"])]


def test_an_account_that_stays_unreachable_is_told_to_the_team_once_and_when_it_works_again(
    mastodon_server: MockServer,
    make_app: Callable[..., App],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The instance is gone for three quarters of an hour. carebot logged a warning each cycle and /health
    went stale, but a team that watches its alert channel heard nothing until customers complained of
    silence. Now the outage is told once, after `notify.account_down_after` (15 minutes), and its end once."""
    upstream = urlsplit(mastodon_server.base_url)
    assert upstream.hostname is not None and upstream.port is not None
    switch = TcpSwitch(upstream.hostname, upstream.port)
    try:
        app = make_app(f"http://127.0.0.1:{switch.port}", db_url)
        cycle_at = clocked_cycles(app)
        switch.down()
        for minutes, told in ((1, 0), (14, 0), (16, 1), (40, 1)):  # a restart of the platform is no news
            assert cycle_at(minutes).failed == "unreachable"
            assert len(account_alerts(app)) == told, minutes
        ((kind, text),) = account_alerts(app)
        assert kind == "account_down" and text.startswith(
            f"{ACCOUNT} (mastodon): no good cycle for 16m: could not reach"
        )
        assert "Is base_url right, and is the server up? carebot reads nothing" in text and "nothing is lost" in text

        status = terminal(tmp_path / "carebot.yaml", capsys)
        assert f"OUTAGE, told the team: {text}" in status("status")  # where a person looks first, too

        switch.up()
        assert cycle_at(45).error is None
        assert "OUTAGE" not in status("status")
        assert cycle_at(46).error is None
        assert account_alerts(app)[1:] == [
            ("account_back", f"{ACCOUNT} (mastodon) works again after 45m; its waiting replies go out now.")
        ]

        switch.down()  # a second outage, later: told again, once
        for minutes in (50, 62, 70):
            cycle_at(minutes)
        assert [kind for kind, _ in account_alerts(app)] == ["account_down", "account_back", "account_down"]
    finally:
        switch.close()


def test_a_failing_platform_and_then_refused_credentials_are_each_told_with_what_to_check(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    """A platform answering 503 was told as "cannot be reached: check base_url and the network", the wrong
    thing to check; and credentials refused later in the same outage were never told at all, since the
    outage's alert existed already."""
    base = mastodon_server.base_url
    app = make_app(base, db_url)
    cycle_at = clocked_cycles(app)
    failing = add_fault(base, effect={"type": "status", "status": 503}, path="/api/v1/*", count=None)
    assert cycle_at(5).failed == "error" and cycle_at(16).failed == "error"
    ((kind, text),) = account_alerts(app)
    assert kind == "account_down" and "answers, but with errors" in text and "could not reach" not in text
    mastodon_server_faults_clear(base, failing["id"])
    refused = add_fault(base, effect={"type": "status", "status": 401}, path="/api/v1/*", count=None)
    assert cycle_at(20).failed == "auth"
    assert [kind for kind, _ in account_alerts(app)] == ["account_down", "account_down"]
    assert "refused the credentials" in account_alerts(app)[1][1]
    mastodon_server_faults_clear(base, refused["id"])
    assert cycle_at(30).error is None  # after the pause for refused credentials: one "works again"
    assert [kind for kind, _ in account_alerts(app)][2:] == ["account_back"]


def test_an_outage_is_told_when_two_workers_share_the_account(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    """Two workers, one database: the one that did not read (the other had just begun to) only sent, had
    nothing to send, and counted its cycle as good. So the outage never grew old: no alert, and /health said
    all was well."""
    upstream = urlsplit(mastodon_server.base_url)
    assert upstream.hostname is not None and upstream.port is not None
    switch = TcpSwitch(upstream.hostname, upstream.port)
    try:
        url = f"http://127.0.0.1:{switch.port}"
        first, second = make_app(url, db_url), make_app(url, db_url)
        for app in (first, second):
            app.intervals[ACCOUNT] = 600.0  # as the daemon schedules it: one read per interval, by either worker
        state = first.storage.accounts.get(ACCOUNT)
        assert state is not None and state.last_cycle_at is not None
        began = state.last_cycle_at
        switch.down()
        for minutes in range(11, 25, 2):  # the first reads (and fails) now and then, the second only sends
            for app in (first, second):
                with use_clock(lambda at=began + timedelta(minutes=minutes): at):
                    run_once(app)
        assert [kind for kind, _ in account_alerts(first)] == ["account_down"]
        later = first.storage.accounts.get(ACCOUNT)
        assert later is not None and later.last_cycle_at == began
    finally:
        switch.close()


def test_a_server_that_comes_back_as_another_is_asked_who_the_brand_is(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    """The instance went away and came back restored elsewhere, the brand under another id: the running
    daemon kept the old id, and took every new mention for a post that does not address the brand."""
    upstream = urlsplit(mastodon_server.base_url)
    assert upstream.hostname is not None and upstream.port is not None
    switch = TcpSwitch(upstream.hostname, upstream.port)
    try:
        app = make_app(f"http://127.0.0.1:{switch.port}", db_url)
        switch.down()
        (report,) = run_once(app)
        assert report.failed == "unreachable"
        with MockServer(seed=SEED) as fresh:
            elsewhere = urlsplit(fresh.base_url)
            assert elsewhere.hostname is not None and elsewhere.port is not None
            switch.up((elsewhere.hostname, elsewhere.port))
            post_id = str(post_as(fresh.base_url, "alice", QUESTION)["id"])
            settle(app, lambda: post_id in brand_replies(fresh.base_url))
            assert len(brand_replies(fresh.base_url)[post_id]) == 1
    finally:
        switch.close()


def mastodon_server_faults_clear(base_url: str, rule_id: str) -> None:
    import httpx

    httpx.delete(f"{base_url}/api/v1/_mock/faults/{rule_id}", timeout=10).raise_for_status()


def test_a_reply_whose_answer_never_came_back_is_found_not_posted_again(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    """The server posts the reply but answers after the client gave up: outcome unknown."""
    base = mastodon_server.base_url
    # Reads on a loaded machine must still come back in time; the retry, 1-2 s later, must not fall due in
    # the very cycle that lost the answer (a loaded machine's cycle can outlast 100 ms): it is what looks
    # the post up once the server has made it.
    app = make_app(base, db_url, timeout="600ms", retry_backoff="2s")
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(base, effect={"type": "latency", "delay_ms": 1800}, path="/api/v1/statuses", methods=["POST"])
    (report,) = run_once(app)
    assert report.sent.retried == 1
    assert "Unavailable" in (public_reply(app, post_id).last_error or "")
    settle(app, lambda: post_id in brand_replies(base), pause=0.2)  # the server finishes its work
    settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT, rounds=40)
    run_once(app)
    replies = brand_replies(base)[post_id]
    assert len(replies) == 1
    assert public_reply(app, post_id).platform_post_id == str(replies[0]["id"])


class _LosesFirstDirectAnswer:
    """The real connector, except that the first private message's answer is lost on the way back:
    the server has posted it, carebot hears a dropped connection (what mastodon-mock's faults cannot
    aim at one of two POSTs to the same path)."""

    def __init__(self, connector: Any) -> None:
        self._connector = connector
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)

    def send_direct(self, mention: Any, text: str, idempotency_key: str) -> Any:
        posted = self._connector.send_direct(mention, text, idempotency_key)
        if not self.lost:
            self.lost += 1
            raise Unavailable("connection dropped before the answer arrived")
        return posted


def test_a_private_follow_up_whose_answer_was_lost_is_found_not_sent_again(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    base = mastodon_server.base_url
    app = make_app(base, db_url)
    lossy = _LosesFirstDirectAnswer(app.connectors[ACCOUNT])
    app.connectors[ACCOUNT] = lossy
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    (first,) = run_once(app)
    assert lossy.lost == 1 and first.sent.retried == 1
    waiting = private_follow_up(app, post_id)
    assert (waiting.state, waiting.attempts) == (ReplyState.APPROVED, 1)  # due again, outcome unknown
    reports = settle(app, lambda: private_follow_up(app, post_id).state is ReplyState.SENT)
    # Looked up and recorded, not posted again (an idempotency key is only kept for an hour).
    assert sum(report.sent.found_existing for report in reports) == 1
    (private,) = brand_replies(base, direct=True)[post_id]
    assert private_follow_up(app, post_id).platform_post_id == str(private["id"])
    assert len(brand_replies(base)[post_id]) == 1


def test_a_malformed_answer_to_a_post_is_retried_and_posted_once(
    mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    base = mastodon_server.base_url
    app = make_app(base)
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(base, effect={"type": "malformed"}, path="/api/v1/statuses", methods=["POST"])
    (report,) = run_once(app)
    assert report.sent.retried == 1
    assert "BadResponse" in (public_reply(app, post_id).last_error or "")
    settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT)
    assert len(brand_replies(base)[post_id]) == 1


@pytest.mark.parametrize(
    "effect",
    [
        {"type": "status", "status": 502},
        {"type": "malformed"},
        {"type": "malformed", "truncate": False},
        {"type": "latency", "delay_ms": 700},
        {"type": "status", "status": 200, "body": [{"id": "1", "type": "mention", "status": None}]},
        {"type": "status", "status": 200, "body": {"error": "not a list"}},
        {"type": "status", "status": 200, "body": [{"id": "9", "type": "mention", "status": {"id": "9"}}]},
    ],
    ids=["502", "truncated", "not-json", "slow", "status-null", "object", "half-status"],
)
def test_a_failed_read_loses_nothing_the_next_cycle_answers(
    mastodon_server: MockServer, make_app: Callable[..., App], effect: dict[str, Any]
) -> None:
    base = mastodon_server.base_url
    app = make_app(base, timeout="400ms")
    before = app.storage.accounts.get(ACCOUNT)
    post_id = str(post_as(base, "alice", QUESTION)["id"])
    add_fault(base, effect=effect, path="/api/v1/notifications", methods=["GET"])
    (report,) = run_once(app)
    assert report.new == 0 and not report.paused
    after = app.storage.accounts.get(ACCOUNT)
    assert after is not None and before is not None
    assert after.cursor == before.cursor or report.error is None  # a read that failed never moves the cursor
    settle(app, lambda: post_id in brand_replies(base))
    run_once(app)
    assert len(brand_replies(base)[post_id]) == 1


# --- other accounts carry on; the daemon never exits ------------------------------------------------


def two_accounts(dead_url: str) -> str:
    return configs.mastodon_account(dead_url, name="acme-dead", timeout="1s")


def test_a_token_fixed_after_it_was_refused_works_at_the_next_start(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    """A refused token pauses the account for five minutes, stored in the database. Fixing the token and
    starting again used to meet that pause: "failed (auth)" and exit 1 for five more minutes, though
    check-config signed in. A new process now tries its own credentials once before honouring it."""
    base = mastodon_server.base_url
    path = write_config(tmp_path, base, f"sqlite:///{tmp_path / 'carebot.db'}")
    wrong = running_bot(load_config(path, {"BRAND_TOKEN": "not-the-token"}), first_cycle=False)
    (refused,) = run_once(wrong)
    assert refused.failed == "auth" and refused.paused
    (still,) = run_once(wrong)  # the same process, the same token: it waits, and does not ask again
    assert still.paused and still.failed == "auth"
    # Refused credentials never mend themselves: the team is told at once, and once.
    ((kind, text),) = account_alerts(wrong)
    assert kind == "account_down" and "refused the credentials: check the account's token" in text
    assert "Then start carebot again" in text
    wrong.close()

    fixed = running_bot(load(path), first_cycle=False)
    (report,) = run_once(fixed)
    assert report.error is None and not report.paused
    assert account_alerts(fixed)[1:] == [
        ("account_back", f"{ACCOUNT} (mastodon) works again; its waiting replies go out now.")
    ]
    post_id = str(post_as(base, "alice", QUESTION)["id"])  # answered from the first good cycle on
    settle(fixed, lambda: post_id in brand_replies(base))
    assert len(brand_replies(base)[post_id]) == 1


def test_an_unreachable_instance_does_not_stop_the_other_account(
    mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    base = mastodon_server.base_url
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    app = make_app(base, other_account=two_accounts(dead))
    post_id = str(post_as(base, "alice", QUESTION)["id"])
    reports = {r.account: r for r in run_once(app)}
    assert reports["acme-dead"].error and "Unreachable" in reports["acme-dead"].error
    assert reports[ACCOUNT].error is None and reports[ACCOUNT].sent.sent == 1
    assert len(brand_replies(base)[post_id]) == 1


def test_the_running_daemon_survives_faults_on_every_endpoint(
    mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    base = mastodon_server.base_url
    dead = f"http://127.0.0.1:{free_port()}"
    app = make_app(base, other_account=two_accounts(dead))
    post_ids = [str(post_as(base, who, QUESTION)["id"]) for who in ("alice", "dewi")]
    for path, method in (
        ("/api/v1/notifications", "GET"),
        ("/api/v1/statuses", "POST"),
        ("/api/v1/statuses/*/context", "GET"),
    ):
        add_fault(base, effect={"type": "status", "status": 500}, path=path, methods=[method], count=1)
        add_fault(base, effect={"type": "malformed"}, path=path, methods=[method], count=1)
    stop = threading.Event()
    daemon = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    daemon.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(p in brand_replies(base) for p in post_ids):
            assert daemon.is_alive(), "the daemon stopped"
            time.sleep(0.3)
        assert daemon.is_alive()
    finally:
        stop.set()
        daemon.join(timeout=15)
    assert not daemon.is_alive()
    replies = brand_replies(base)
    assert [len(replies.get(p, [])) for p in post_ids] == [1, 1]


def test_a_long_retention_pass_holds_up_no_account(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly retention pass ran in the accounts' thread pool, one thread per account: with one account,
    the account's cycles waited for as long as the pass ran (masking a large database takes a while)."""
    base = mastodon_server.base_url
    path = write_config(tmp_path, base, f"sqlite:///{tmp_path / 'carebot.db'}")
    text = path.read_text(encoding="utf-8").replace("storage:\n", "storage:\n  retention: 90d\n", 1)
    path.write_text(text, encoding="utf-8")
    app = running_bot(load(path))
    running, release = threading.Event(), threading.Event()

    def long_pass(*_args: Any, **_kwargs: Any) -> int:
        running.set()
        release.wait(30)
        return 0

    monkeypatch.setattr(daemon_module, "apply_retention", long_pass)
    stop = threading.Event()
    daemon = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    daemon.start()
    try:
        assert running.wait(10), "the retention pass did not start"
        post_id = str(post_as(base, "alice", QUESTION)["id"])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and post_id not in brand_replies(base):
            time.sleep(0.2)
        answered_meanwhile = post_id in brand_replies(base)
    finally:
        release.set()
        stop.set()
        daemon.join(timeout=15)
    assert answered_meanwhile, "the mention waited for the retention pass"


def test_a_cycle_longer_than_the_poll_interval_is_followed_by_the_next_at_once(
    mastodon_server: MockServer, make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the scheduler skipped the run that fell due while a long cycle (a backlog, a slow server) was
    going, warned of it, and the account waited for the interval after that. Now the next cycle starts as
    the long one ends, and the log says so in carebot's words."""
    base = mastodon_server.base_url
    app = make_app(base)  # polls every second
    first = str(post_as(base, "alice", QUESTION)["id"])
    add_fault(base, effect={"type": "latency", "delay_ms": 2500}, path="/api/v1/notifications", methods=["GET"])
    caplog.set_level(logging.INFO)
    stop = threading.Event()
    daemon = threading.Thread(target=run_forever, args=(app, stop), daemon=True)
    daemon.start()
    try:
        time.sleep(1.0)  # the first cycle's read is held by the server
        second = str(post_as(base, "dewi", QUESTION)["id"])  # the next cycle reads it
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(p in brand_replies(base) for p in (first, second)):
            time.sleep(0.2)
    finally:
        stop.set()
        daemon.join(timeout=15)
    replies = brand_replies(base)
    assert [len(replies.get(p, [])) for p in (first, second)] == [1, 1]
    assert "longer than the poll interval: the next one starts now" in caplog.text
    assert "maximum number of running instances" not in caplog.text


# --- polling within the budget ----------------------------------------------------------------------


@pytest.fixture
def limited_server() -> Iterator[MockServer]:
    """A mastodon-mock that really limits: 12 requests per token per 2 s window."""
    config = MastodonMockConfig.model_validate(
        {"database": {"path": ":memory:"}, "seed": SEED.model_dump()}
    ).model_copy(update={"ratelimit": RateLimitConfig(enabled=True, limit=12, window_seconds=2)})
    with MockServer(config=config) as server:
        yield server


def test_a_backlog_is_drained_in_pages_without_running_out_of_budget(
    limited_server: MockServer, make_app: Callable[..., App]
) -> None:
    """16 mentions wait; the server allows 12 requests per window: the bot reads and answers them all
    over several windows, waiting for each reset instead of being refused (never a 429)."""
    base = limited_server.base_url
    app = make_app(base)
    posted = [
        str(post_as(base, who, f"@brand how can I reach support? question {n}")["id"])
        for who in ("alice", "boris", "dewi", "layla")
        for n in range(4)
    ]
    pauses: list[str] = []
    errors: list[str] = []
    for _ in range(40):
        reports = run_once(app)
        errors += [r.error for r in reports if r.error]
        state = app.storage.accounts.get(ACCOUNT)
        assert state is not None
        if state.pause_reason:
            pauses.append(state.pause_reason)
        if all(public_reply_state(app, p) is ReplyState.SENT for p in posted):
            break
        wait = (state.paused_until - now()).total_seconds() if state.paused_until else 0.05
        time.sleep(min(max(wait, 0.05), 2.1))
    assert all(public_reply_state(app, p) is ReplyState.SENT for p in posted)
    assert any("budget" in p for p in pauses), pauses  # it waited for a reset the server announced...
    assert not any("rate limited, retry" in e for e in errors), errors  # ...so the server never refused
    time.sleep(2.1)  # a fresh window, to count what is on the server
    replies = brand_replies(base)
    assert sorted(len(replies.get(p, [])) for p in posted) == [1] * len(posted)


def public_reply_state(app: App, post_id: str) -> ReplyState | None:
    found = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    if not found:
        return None
    return public_reply(app, post_id).state


# --- everything at once -----------------------------------------------------------------------------


def test_under_mixed_faults_every_mention_ends_answered_once_or_parked_with_a_reason(
    mastodon_server: MockServer, make_app: Callable[..., App], db_url: str
) -> None:
    base = mastodon_server.base_url
    app = make_app(base, db_url, timeout="400ms")
    texts = [COMPLAINT, QUESTION, "@brand why is the premium plan so expensive? any discount for students?"]
    posted = [
        str(post_as(base, who, texts[n % 3])["id"]) for n, who in enumerate(["alice", "boris", "dewi", "layla"] * 2)
    ]
    statuses, notifications = "/api/v1/statuses", "/api/v1/notifications"
    add_fault(base, effect={"type": "status", "status": 500}, path=notifications, methods=["GET"])
    add_fault(base, effect={"type": "malformed"}, path=notifications, methods=["GET"])
    add_fault(base, effect={"type": "status", "status": 503}, path=statuses, methods=["POST"], count=3)
    add_fault(base, effect={"type": "latency", "delay_ms": 800}, path=statuses, methods=["POST"], count=2)
    add_fault(base, effect={"type": "malformed"}, path=statuses, methods=["POST"], count=2)
    add_fault(base, effect={"type": "status", "status": 502}, path="/api/v1/statuses/*/context", methods=["GET"])

    def settled() -> bool:
        states = [r.state for m in app.storage.mentions.all() for r in app.storage.replies.for_mention(m.id)]
        return len(app.storage.mentions.all()) == len(posted) and all(
            s in (ReplyState.SENT, ReplyState.FAILED, ReplyState.PENDING) for s in states
        )

    settle(app, settled, rounds=40, pause=0.25)
    time.sleep(0.9)  # let the server finish any post it was still holding back
    run_once(app)
    on_server = brand_replies(base)
    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    for post_id in posted:
        replies = {r.kind.value: r for r in app.storage.replies.for_mention(stored[post_id].id)}
        public = replies.get("public")
        if public is None or public.state is ReplyState.PENDING:
            assert post_id not in on_server  # nothing decided to say: nothing said
            continue
        if public.state is ReplyState.SENT:
            (reply,) = on_server[post_id]
            assert public.platform_post_id == str(reply["id"])
        else:
            assert public.state is ReplyState.FAILED and public.last_error
            assert post_id not in on_server
    # Private follow-ups answer their mention privately: each went out once, and only after its public reply.
    direct_sent = {
        m.mention.post_id: r
        for m in stored.values()
        for r in app.storage.replies.for_mention(m.id)
        if r.kind.value == "direct" and r.state is ReplyState.SENT
    }
    assert all(app.storage.replies.for_mention(r.mention_id)[0].state is ReplyState.SENT for r in direct_sent.values())
    direct_on_server = {
        post_id: [str(s["id"]) for s in found] for post_id, found in brand_replies(base, direct=True).items()
    }
    assert direct_on_server == {post_id: [r.platform_post_id] for post_id, r in direct_sent.items()}
