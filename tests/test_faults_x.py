"""The whole bot under X failures: the stateful fake X behind `prism proxy --errors`, faults injected.

What is checked is what the customer sees on X (`fake.brand_posts()`): each mention answered exactly
once, or its reply parked as failed with the reason, listed for a person and retryable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx
from mastodon_mock.testing import MockServer

from bot.cli import main as carebot
from bot.clock import use_clock
from bot.config import load_config
from bot.models import ReplyState
from bot.run import outbox
from bot.run.app import App
from bot.run.daemon import run_once
from bot.run.status import account_status
from tests import configs
from tests.peers.mastodon import post_as
from tests.peers.x import XPeer, free_port
from tests.peers.x_fake import BRAND, FakeX
from tests.test_faults_mastodon import brand_replies

pytestmark = pytest.mark.slow  # end-to-end against the fake X behind Prism, with faults

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "acme-x"
COMPLAINT = f"@{BRAND.username} my order never arrived and nobody answers, please help"
QUESTION = f"@{BRAND.username} how can I contact your support team? is there an email?"


DAEMON = (
    """daemon:
  max_attempts: 3
  retry_backoff: 100ms
  max_replies_per_author_hour: 50
"""
    + configs.SEPARATE_POSTS
)


def write_config(directory: Path, base_url: str, db_url: str, *, timeout: str = "5s", other_account: str = "") -> Path:
    accounts = [configs.x_account(base_url, name=ACCOUNT, poll_interval=None, timeout=timeout), other_account]
    return configs.write_config(
        directory, db_url=db_url, accounts=accounts, sections=DAEMON, brand=configs.EMAIL_ONLY_BRAND_YAML
    )


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TOKEN", str(BRAND.bearer_token))  # for the CLI, which reads the environment
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def build(base_url: str, db_url: str | None = None, **options: Any) -> App:
        url = db_url or f"sqlite:///{tmp_path / 'carebot.db'}"
        env = {"X_TOKEN": str(BRAND.bearer_token), "BRAND_TOKEN": "brand_token"}
        app = App.build(load_config(write_config(tmp_path, base_url, url, **options), env))
        apps.append(app)
        for _ in range(3):  # from now on: a first cycle that timed out (500 ms on a loaded machine) starts nothing
            if all(report.failed is None for report in run_once(app)):
                break
        return app

    yield build
    for app in apps:
        app.close()


def replies_on_x(fake: FakeX) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for post in fake.brand_posts():
        for ref in post.get("referenced_tweets", []):
            if ref["type"] == "replied_to":
                found.setdefault(ref["id"], []).append(post)
    return found


def the_reply(app: App, post_id: str) -> Any:
    (stored,) = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    (reply,) = app.storage.replies.for_mention(stored.id)  # X: public only, never an automated DM
    return reply


def settle(app: App, done: Callable[[], bool], rounds: int = 20) -> None:
    for _ in range(rounds):
        run_once(app)
        if done():
            return
        time.sleep(0.15)
    raise AssertionError(f"not settled after {rounds} cycles")


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_while_posting_are_retried_and_the_reply_goes_out_once(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str, status: int
) -> None:
    app = make_app(x_peer.base_url, db_url)
    post_id = x_peer.fake.post("rina", COMPLAINT)
    x_peer.fake.fail_next(status, 2, method="POST", path="/2/tweets")
    (report,) = run_once(app)
    assert report.sent.retried == 1
    assert "Unavailable" in (the_reply(app, post_id).last_error or "")
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
    run_once(app)
    assert len(replies_on_x(x_peer.fake)[post_id]) == 1


def test_a_post_whose_answer_came_too_late_is_found_not_posted_again(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str
) -> None:
    """X has no idempotency key: the reply is looked up among the brand's posts before a retry."""
    app = make_app(x_peer.base_url, db_url, timeout="500ms")
    post_id = x_peer.fake.post("rina", COMPLAINT)
    x_peer.fake.delay_next(2.0, method="POST", path="/2/tweets")  # posted at once, answered too late
    (report,) = run_once(app)
    assert report.sent.retried == 1 and "Unavailable" in (the_reply(app, post_id).last_error or "")
    assert len(replies_on_x(x_peer.fake)[post_id]) == 1  # it is on X all the same
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
    run_once(app)
    (posted,) = replies_on_x(x_peer.fake)[post_id]
    assert the_reply(app, post_id).platform_post_id == posted["id"]
    assert sum(1 for r in x_peer.fake.requests if (r.method, r.path) == ("POST", "/2/tweets")) == 1


def test_a_reply_that_keeps_failing_is_parked_listed_and_retried_by_a_person(
    tmp_path: Path, x_peer: XPeer, make_app: Callable[..., App], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(x_peer.base_url, db_url)
    post_id = x_peer.fake.post("rina", COMPLAINT)
    x_peer.fake.fail_next(503, 3, method="POST", path="/2/tweets")
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.FAILED)
    parked = the_reply(app, post_id)
    assert parked.attempts == 3 and "gave up after 3 attempts" in (parked.last_error or "")
    assert replies_on_x(x_peer.fake) == {}

    config = str(tmp_path / "carebot.yaml")
    capsys.readouterr()
    assert carebot(["queue", "list", "--json", "--config", config]) == 0
    (listed,) = [i for i in json.loads(capsys.readouterr().out) if i["post_id"] == post_id]
    assert listed["state"] == "failed" and "503" in listed["last_error"]

    assert carebot(["queue", "retry", str(parked.id), "--by", "lead", "--config", config]) == 0
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
    run_once(app)
    assert len(replies_on_x(x_peer.fake)[post_id]) == 1


def test_a_rate_limited_post_keeps_its_attempts_and_goes_out_after_the_reset(
    x_peer: XPeer, make_app: Callable[..., App]
) -> None:
    app = make_app(x_peer.base_url)
    post_id = x_peer.fake.post("rina", COMPLAINT)
    x_peer.fake.rate_limit_next(reset_in=1.0, method="POST", path="/2/tweets")
    (report,) = run_once(app)
    assert report.paused
    reply = the_reply(app, post_id)
    assert reply.state is ReplyState.APPROVED and reply.attempts == 0
    state = app.storage.accounts.get(ACCOUNT)
    assert state is not None and state.paused_until is not None
    time.sleep(max(0.0, state.paused_until.timestamp() - time.time()) + 0.05)
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
    assert len(replies_on_x(x_peer.fake)[post_id]) == 1


def test_malformed_answers_are_retried_and_nothing_is_lost(x_fake_server: FakeX, make_app: Callable[..., App]) -> None:
    """Straight to the fake (Prism would turn an off-spec answer into a 500): 200s without the data."""
    fake = x_fake_server
    fake.reset()
    try:
        app = make_app(fake.base_url)
        post_id = fake.post("rina", COMPLAINT)
        fake.fail_next(200, 1, method="GET", path="/2/users/*/mentions")  # an answer with no "data"
        fake.fail_next(200, 1, method="POST", path="/2/tweets")  # "created", but no post id
        (report,) = run_once(app)
        assert report.new == 0 and report.error is None  # nothing read, nothing lost: the cursor stayed
        (report,) = run_once(app)
        assert report.new == 1 and report.sent.retried == 1
        assert "BadResponse" in (the_reply(app, post_id).last_error or "")
        settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
        assert len(replies_on_x(fake)[post_id]) == 1
    finally:
        fake.reset()


def test_reading_stays_within_the_mentions_budget(x_peer: XPeer, make_app: Callable[..., App]) -> None:
    """5 mention reads per window: the bot stops reading before X refuses it, and replying
    (another budget on X) does not make it forget how little reading is left."""
    x_peer.fake.set_limit("GET mentions", 5)
    app = make_app(x_peer.base_url)
    answered: list[str] = []
    paused = None
    for n in range(6):
        post_id = x_peer.fake.post(f"user{n}", f"{QUESTION} ({n})")
        (report,) = run_once(app)
        assert report.error is None or "RateLimited" not in report.error, report.error
        state = app.storage.accounts.get(ACCOUNT)
        assert state is not None
        if state.paused_until is not None:
            paused = state.pause_reason
            break
        answered.append(post_id)
    assert paused is not None and "budget nearly spent" in paused
    assert len(answered) >= 1
    replies = replies_on_x(x_peer.fake)
    assert all(len(replies[p]) == 1 for p in answered)


def test_blocked_and_muted_users_get_no_reply_on_x(x_peer: XPeer, make_app: Callable[..., App]) -> None:
    x_peer.fake.block("spammer")
    x_peer.fake.mute("noisy")
    app = make_app(x_peer.base_url)
    blocked = x_peer.fake.post("spammer", QUESTION)
    muted = x_peer.fake.post("noisy", COMPLAINT)
    welcome = x_peer.fake.post("rina", QUESTION)
    run_once(app)
    run_once(app)
    replies = replies_on_x(x_peer.fake)
    assert blocked not in replies and muted not in replies
    assert len(replies[welcome]) == 1
    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    assert "blocked or muted" in stored[blocked].reason and "blocked or muted" in stored[muted].reason
    relations = [r.path for r in x_peer.fake.requests if r.path.endswith(("/blocking", "/muting"))]
    assert len(relations) == 2  # read once, then cached across cycles


def test_x_down_does_not_stop_the_mastodon_account(
    x_peer: XPeer, mastodon_server: MockServer, make_app: Callable[..., App]
) -> None:
    mastodon = configs.mastodon_account(mastodon_server.base_url, poll_interval=None)
    app = make_app(x_peer.base_url, other_account=mastodon)
    on_x = x_peer.fake.post("rina", QUESTION)
    on_mastodon = str(post_as(mastodon_server.base_url, "alice", "@brand how can I contact your support team?")["id"])
    x_peer.fake.fail_next(503, 2, method="GET", path="/2/users/*/mentions")
    reports = {r.account: r for r in run_once(app)}
    assert reports[ACCOUNT].error and "Unavailable" in reports[ACCOUNT].error
    assert reports["acme-mastodon"].error is None
    assert len(brand_replies(mastodon_server.base_url)[on_mastodon]) == 1
    settle(app, lambda: on_x in replies_on_x(x_peer.fake))
    assert len(replies_on_x(x_peer.fake)[on_x]) == 1


# -- a duplicate refusal after an attempt of unknown outcome: it is already there ---------------------------


def posts_to_x(fake: FakeX) -> int:
    return sum(1 for r in fake.requests if (r.method, r.path) == ("POST", "/2/tweets"))


def test_lost_answer_and_a_lookup_that_misses_twice_post_one_reply_and_park_it(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str
) -> None:
    """The reply is on X but its answer was lost; X's timeline lags, so the lookup before the retry and the
    harder one after X refuses the retry as a duplicate both miss. Rewording would make a second reply."""
    fake = x_peer.fake
    app = make_app(x_peer.base_url, db_url, timeout="1s")
    post_id = fake.post("rina", COMPLAINT)
    fake.lag_lookups(3)  # the reply stays out of the next 3 timeline or search answers
    fake.delay_next(3, method="POST", path="/2/tweets")  # made on X, its answer lost
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.FAILED)
    run_once(app)

    parked = the_reply(app, post_id)
    (posted,) = replies_on_x(fake)[post_id]  # one reply on X, not two
    assert posts_to_x(fake) == 2  # the first, and the retry X refused as a duplicate
    assert not parked.reworded and parked.text == posted["text"]
    assert "probably posted already" in (parked.last_error or "") and "DuplicateContent" in (parked.last_error or "")
    lookups = [r.path for r in fake.requests if r.method == "GET" and not r.path.endswith(("/mentions", "/me"))]
    assert lookups[-3:] == [f"/2/users/{BRAND.id}/tweets", f"/2/users/{BRAND.id}/tweets", "/2/tweets/search/recent"]

    # A person retries it once the timeline has caught up: it is looked up first, found, and recorded.
    app.storage.replies.retry(parked.id, "lead")
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)
    assert the_reply(app, post_id).platform_post_id == posted["id"]
    assert len(replies_on_x(fake)[post_id]) == 1 and posts_to_x(fake) == 2


def two_workers_and_a_reply_in_doubt(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str, timeout: str
) -> tuple[App, App, str]:
    """Two workers on one database, and a reply whose first post failed so that nobody knows whether it
    is on X: its retry looks it up first."""
    worker_a = make_app(x_peer.base_url, db_url, timeout=timeout)
    worker_b = make_app(x_peer.base_url, db_url, timeout=timeout)
    post_id = x_peer.fake.post("rina", COMPLAINT)
    x_peer.fake.fail_next(503, method="POST", path="/2/tweets")  # nothing made, but the sender cannot know that
    run_once(worker_a)
    assert the_reply(worker_a, post_id).outcome_unknown
    time.sleep(0.5)  # past the retry's 100 ms backoff
    return worker_a, worker_b, post_id


@contextmanager
def a_slow_lookup(fake: FakeX, worker_a: App, post_id: str, seconds: float) -> Iterator[None]:
    """Worker A retries the reply in a thread; X reads its lookup at once and answers after `seconds`. The
    block runs once A's claim (1 s) has run out, with what is posted from then on lagging in X's timeline."""
    fake.delay_next(seconds, method="GET", path=f"/2/users/{BRAND.id}/tweets")
    slow = threading.Thread(target=run_once, args=(worker_a,), name="worker-a")
    slow.start()
    try:
        deadline = time.monotonic() + 20
        while the_reply(worker_a, post_id).state is not ReplyState.SENDING:
            assert time.monotonic() < deadline, "worker A never claimed the reply"
            time.sleep(0.05)
        time.sleep(1.5)
        fake.lag_lookups(10)  # as X's timeline often does
        yield
    finally:
        slow.join(30)
    assert not slow.is_alive()


def assert_sent_once_and_left_alone(fake: FakeX, app: App, post_id: str) -> None:
    reply = the_reply(app, post_id)
    (posted,) = replies_on_x(fake)[post_id]
    assert reply.state is ReplyState.SENT and reply.platform_post_id == posted["id"]
    assert posts_to_x(fake) == 2  # the one refused with 503, and B's
    assert app.storage.replies.queue() == []  # nothing for a person to look at
    run_once(app)
    assert posts_to_x(fake) == 2 and the_reply(app, post_id).state is ReplyState.SENT


def test_a_sender_whose_claim_ran_out_in_a_slow_lookup_leaves_the_reply_to_the_worker_that_took_it(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A's lookup before a retry outlasts its claim (1 s here; at least `CLAIM_LEASE` in production),
    so worker B takes the reply over, finds nothing and posts it. A's lookup comes back empty too: X read it
    before B posted. Before, A posted anyway: X refused the same words as a duplicate, its lagging timeline
    hid B's post from A's harder lookup, and A parked a reply B had sent as failed, for a person to retry
    (and rewording it, were it not in doubt, would have made a second reply)."""
    monkeypatch.setattr(outbox, "claim_lease", lambda account: timedelta(seconds=1))
    worker_a, worker_b, post_id = two_workers_and_a_reply_in_doubt(x_peer, make_app, db_url, timeout="10s")
    with a_slow_lookup(x_peer.fake, worker_a, post_id, seconds=8):  # within A's timeout
        (taken_over,) = run_once(worker_b)
        assert taken_over.sent.sent == 1  # B posted it while A still waited
    assert_sent_once_and_left_alone(x_peer.fake, worker_a, post_id)


def test_a_sender_whose_slow_lookup_failed_after_another_took_the_reply_over_leaves_it_sent(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, but A's lookup times out (5 s) after B has posted the reply. Before, A put it back to
    approved for a retry, over B's record of the post: the retry's lookup missed it (X's lag) and X refused
    the post as a duplicate, so a sent reply ended parked as failed."""
    monkeypatch.setattr(outbox, "claim_lease", lambda account: timedelta(seconds=1))
    worker_a, worker_b, post_id = two_workers_and_a_reply_in_doubt(x_peer, make_app, db_url, timeout="5s")
    with a_slow_lookup(x_peer.fake, worker_a, post_id, seconds=8):  # past A's timeout
        (taken_over,) = run_once(worker_b)
        assert taken_over.sent.sent == 1
    assert_sent_once_and_left_alone(x_peer.fake, worker_a, post_id)


def test_lost_answer_found_when_looking_harder_after_the_duplicate_refusal(
    x_peer: XPeer, make_app: Callable[..., App], db_url: str
) -> None:
    fake = x_peer.fake
    app = make_app(x_peer.base_url, db_url, timeout="1s")
    post_id = fake.post("rina", COMPLAINT)
    fake.lag_lookups(1)  # only the lookup before the retry misses
    fake.delay_next(3, method="POST", path="/2/tweets")
    settle(app, lambda: the_reply(app, post_id).state is ReplyState.SENT)

    (posted,) = replies_on_x(fake)[post_id]
    assert the_reply(app, post_id).platform_post_id == posted["id"]
    assert not the_reply(app, post_id).reworded and posts_to_x(fake) == 2


def test_killed_after_x_made_the_reply_and_the_lookup_misses_twice_one_reply(
    tmp_path: Path, x_peer: XPeer, make_app: Callable[..., App], db_url: str
) -> None:
    """kill -9 of a real `carebot run --once` while X holds its answer; the next process takes the dead
    claim over, and X's timeline still lags behind: one reply on X all the same."""
    fake = x_peer.fake
    app = make_app(x_peer.base_url, db_url, timeout="30s")  # the first cycle: from now on
    post_id = fake.post("rina", COMPLAINT)
    fake.delay_next(60, method="POST", path="/2/tweets")  # X makes the post, the answer never comes
    fake.lag_lookups(3)  # and it stays out of the next 3 timeline or search answers
    config = tmp_path / "carebot.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--once", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not replies_on_x(fake) and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert replies_on_x(fake), "the child never posted"
    finally:
        child.kill()
        child.wait()
    assert the_reply(app, post_id).state is ReplyState.SENDING  # claimed by a process now dead

    settle(app, lambda: the_reply(app, post_id).state is ReplyState.FAILED)
    run_once(app)

    assert len(replies_on_x(fake)[post_id]) == 1 and posts_to_x(fake) == 2
    parked = the_reply(app, post_id)
    assert "probably posted already" in (parked.last_error or "") and not parked.reworded


# -- a plan's monthly cap: pause until the month ends, tell the team once, resume -------------------------

HOOK = "https://hooks.example/services/T000/B000/XXXX"


@pytest.fixture
def clock(x_peer: XPeer) -> Iterator[Callable[[datetime], None]]:
    """Set the one clock carebot reads (`bot.clock.use_clock`) and the fake X's, from 2031-03-30 12:00 UTC."""
    moment = [datetime(2031, 3, 30, 12, 0, tzinfo=UTC)]

    def set_to(when: datetime) -> None:
        moment[0] = when

    x_peer.fake.clock = lambda: moment[0].timestamp()
    with use_clock(lambda: moment[0]):
        yield set_to


@pytest.mark.parametrize("capped_by", ["x", "carebot"])
def test_a_monthly_cap_pauses_the_account_alerts_once_and_resumes_next_month(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    clock: Callable[[datetime], None],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    capped_by: str,
) -> None:
    """X answers 429 UsageCapExceeded (period Monthly), or carebot's own count reaches the plan's cap
    first: either way the account waits for the next month without asking X again, the team hears of it
    once, status and `run --once` say so, and the first cycle of the next month carries on."""
    fake = x_peer.fake
    monkeypatch.setattr("bot.cli.run.configure_logging", lambda *_args: None)  # keep pytest's log capture
    limits = "    limits:\n      post_reads_per_month: 3\n" if capped_by == "carebot" else ""
    if capped_by == "x":
        fake.set_usage_cap("reads", 3)
    account = configs.x_account(x_peer.base_url, name=ACCOUNT, tier="pay-per-use", extra=limits)
    sections = DAEMON + f"notify:\n  webhook_url: {HOOK}\n"
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=sections)
    app = App.build(load_config(path, {"X_TOKEN": str(BRAND.bearer_token)}))
    with respx.mock(assert_all_called=False) as hook:
        webhook = hook.post(HOOK).respond(200)
        try:
            run_once(app)  # from now on
            answered = [fake.post(f"user{n}", f"{QUESTION} ({n})") for n in range(3)]
            run_once(app)  # three posts read: the cap
            waiting = fake.post("rina", COMPLAINT)
            capsys.readouterr()
            assert carebot(["run", "--once", "--config", str(path)]) == 1
            said = capsys.readouterr().out
            state = app.storage.accounts.get(ACCOUNT)
            assert state is not None and state.paused_until == datetime(2031, 4, 1, tzinfo=UTC)
            assert "usage cap reached" in (state.pause_reason or "") and "failed (cap)" in said

            asked = len(fake.requests)
            clock(datetime(2031, 3, 31, 9, 0, tzinfo=UTC))  # the next day: still capped
            (report,) = run_once(app)
            assert report.paused and report.failed == "cap" and len(fake.requests) == asked
            assert carebot(["status", "--config", str(path)]) == 0
            assert "paused until 2031-04-01" in capsys.readouterr().out
            [told] = [json.loads(call.request.content)["text"] for call in webhook.calls]
            assert "usage cap" in told and ACCOUNT in told and "2031-04-01" in told

            clock(datetime(2031, 4, 1, 0, 5, tzinfo=UTC))  # a new month
            (report,) = run_once(app)
            assert report.failed is None and not report.paused
            replies = replies_on_x(fake)
            assert all(len(replies[p]) == 1 for p in [*answered, waiting])
            texts = [json.loads(call.request.content)["text"] for call in webhook.calls]
            assert [t for t in texts if "usage cap" in t] == [told]  # once, however many cycles met the cap
            status = account_status(app.storage, app.config.accounts[0])
            assert status["capped"] is None and status["month"]["since"].startswith("2031-04-01")
        finally:
            app.close()


# -- run --once: within the plan's spacing, and an exit status that says whether an account failed ---------


def test_run_once_started_three_times_in_seconds_keeps_within_the_free_plan(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cron calling `run --once` more often than the plan allows: one mentions read per 15 minutes and one
    users/me, remembered across the processes; the runs in between pause, which is no failure."""
    monkeypatch.setattr("bot.cli.run.configure_logging", lambda *_args: None)  # keep pytest's log capture
    vocabulary = "tweets" if x_peer.version == "v2.159" else "posts"  # a probe would spend the only read
    account = configs.x_account(x_peer.base_url, name=ACCOUNT, tier="free", extra=f"    vocabulary: {vocabulary}\n")
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=DAEMON)
    capsys.readouterr()
    statuses = [carebot(["run", "--once", "--config", str(path)]) for _ in range(3)]
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{ACCOUNT}:")]

    assert statuses == [0, 0, 0]
    assert [r.path for r in x_peer.fake.requests] == ["/2/users/me", f"/2/users/{BRAND.id}/mentions"]
    assert said[0].endswith("(ok)") and said[1].endswith("(paused)") and said[2].endswith("(paused)")


@pytest.mark.parametrize("trouble", ["auth", "unreachable"])
def test_run_once_exits_1_when_an_account_failed(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    trouble: str,
) -> None:
    monkeypatch.setattr("bot.cli.run.configure_logging", lambda *_args: None)
    if trouble == "auth":
        monkeypatch.setenv("X_TOKEN", "a-token-x-refuses")
        base_url = x_peer.base_url
    else:
        base_url = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, base_url, db_url)
    capsys.readouterr()
    assert carebot(["run", "--once", "--config", str(path)]) == 1
    assert f"failed ({trouble})" in capsys.readouterr().out


def test_the_free_plan_answers_a_mention_within_its_windows(
    tmp_path: Path, x_peer: XPeer, db_url: str, clock: Callable[[datetime], None]
) -> None:
    """One mentions read per 15 minutes, one read of each of the blocked and muted lists, 17 posts a day:
    a whole free-plan cycle that answers a mention asks X nothing it would refuse."""
    fake = x_peer.fake
    vocabulary = "tweets" if x_peer.version == "v2.159" else "posts"
    account = configs.x_account(x_peer.base_url, name=ACCOUNT, tier="free", extra=f"    vocabulary: {vocabulary}\n")
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=DAEMON)
    app = App.build(load_config(path, {"X_TOKEN": str(BRAND.bearer_token)}))
    try:
        run_once(app)  # from now on: users/me, one mentions read
        post_id = fake.post("rina", QUESTION)
        (early,) = run_once(app)  # too soon: the plan allows one mentions read per 15 minutes
        clock(datetime(2031, 3, 30, 12, 16, tzinfo=UTC))
        (report,) = run_once(app)

        assert early.paused and not early.failed
        assert report.error is None and report.sent.sent == 1 and len(replies_on_x(fake)[post_id]) == 1
        asked = [f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in fake.requests]
        assert asked == ["GET me", "GET mentions", "GET mentions", "GET blocking", "GET muting", "POST tweets"]
    finally:
        app.close()
