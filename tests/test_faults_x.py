"""The whole bot under X failures: the stateful fake X behind `prism proxy --errors`, faults injected.

What is checked is what the customer sees on X (`fake.brand_posts()`): each mention answered exactly
once, or its reply parked as failed with the reason, listed for a person and retryable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.cli import main as carebot
from bot.config import load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from tests import configs
from tests.peers.mastodon import post_as
from tests.peers.x import XPeer
from tests.peers.x_fake import BRAND, FakeX
from tests.test_faults_mastodon import brand_replies

pytestmark = pytest.mark.slow  # end-to-end against the fake X behind Prism, with faults

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
        run_once(app)  # from now on
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


def with_blocks(fake: FakeX, monkeypatch: pytest.MonkeyPatch, blocked: list[str], muted: list[str]) -> None:
    """Serve GET /2/users/:id/blocking and /muting from the fake (which has no such routes of its own)."""
    route = fake._route

    def routed(method: str, path: str, query: dict[str, str], payload: Any, user: Any) -> tuple[int, dict[str, Any]]:
        for relation, names in (("blocking", blocked), ("muting", muted)):
            if method == "GET" and path == f"/2/users/{fake.brand.id}/{relation}":
                users = [fake.add_user(name) for name in names]
                data = [{"id": u.id, "name": u.name, "username": u.username} for u in users]
                return 200, {"data": data, "meta": {"result_count": len(data)}} if data else {
                    "meta": {"result_count": 0}
                }
        return route(method, path, query, payload, user)

    monkeypatch.setattr(fake, "_route", routed)


def test_blocked_and_muted_users_get_no_reply_on_x(
    x_peer: XPeer, make_app: Callable[..., App], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_blocks(x_peer.fake, monkeypatch, blocked=["spammer"], muted=["noisy"])
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
