"""A backlog on mastodon-mock: one cycle reads every page and sends every due reply, several at once.

What a support lead checks afterwards: on the server, each mention has exactly one public reply (and its
private follow-up after it, where there is one); nothing waits in the queue that should not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from bot.storage import engine as engine_module
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, CUSTOMERS, add_fault, client

ACCOUNT = "acme-mastodon"
QUESTION = "@brand how do I reset my password? ({n})"
COMPLAINT = "@brand my order {n} never arrived and nobody answers, please help"
# Pages of 5: the backlogs below are more pages than the 20 a cycle used to read, and more replies than
# one round of the outbox (and the 50 a cycle used to send).
DAEMON = (
    """daemon:
  page_size: 5
  send_concurrency: 4
  max_replies_per_author_hour: 1000
"""
    + configs.SEPARATE_POSTS
)


def start(running_bot: StartBot, tmp_path: Path, base_url: str, db_url: str | None = None) -> App:
    url = db_url or f"sqlite:///{tmp_path / 'carebot.db'}"
    path = configs.write_config(
        tmp_path, db_url=url, accounts=[configs.mastodon_account(base_url, name=ACCOUNT)], sections=DAEMON
    )
    config: Config = load_config(path, {"BRAND_TOKEN": "brand_token"})
    return running_bot(config)


def post_many(base_url: str, template: str, count: int) -> list[str]:
    """`count` mentions, the customers taking turns; their status ids."""
    ids: list[str] = []
    with ExitStack() as stack:
        apis = [stack.enter_context(client(base_url, name)) for name in CUSTOMERS]
        for n in range(count):
            ids.append(str(apis[n % len(apis)].status_post(template.format(n=n))["id"]))
    return ids


def brand_statuses(base_url: str) -> list[dict[str, Any]]:
    """Everything the brand posted, oldest first."""
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        statuses: list[dict[str, Any]] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            statuses.extend(page)
            page = api.fetch_next(page)
    return sorted(statuses, key=lambda s: (len(str(s["id"])), str(s["id"])))


def answers(base_url: str, direct: bool = False) -> dict[str, list[str]]:
    """The brand's public replies (or private follow-ups), by the status they answer: their ids."""
    found: dict[str, list[str]] = {}
    for status in brand_statuses(base_url):
        if (status["visibility"] == "direct") == direct:
            found.setdefault(str(status["in_reply_to_id"]), []).append(str(status["id"]))
    return found


def order(status_id: str) -> tuple[int, str]:
    return len(status_id), status_id


def test_a_backlog_bigger_than_a_round_is_answered_in_one_run_exactly_once(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path, db_url: str
) -> None:
    base = mastodon_server.base_url
    app = start(running_bot, tmp_path, base, db_url)
    posted = post_many(base, QUESTION, 130)

    (report,) = run_once(app)

    assert report.error is None
    assert report.new == 130 and report.sent.sent == 130
    replies = answers(base)
    assert {post: len(replies.get(post, [])) for post in posted} == dict.fromkeys(posted, 1)
    assert app.storage.replies.due(ACCOUNT) == []


def test_a_private_follow_up_still_goes_out_after_its_public_reply(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path
) -> None:
    base = mastodon_server.base_url
    app = start(running_bot, tmp_path, base)
    posted = post_many(base, COMPLAINT, 24)

    (report,) = run_once(app)

    assert report.error is None
    public, private = answers(base), answers(base, direct=True)
    followed_up = [post for post in posted if post in private]
    assert followed_up, "complaints get a private follow-up: nothing checked otherwise"
    for post in posted:
        assert len(public.get(post, [])) == 1
    for post in followed_up:
        (dm,) = private[post]
        assert order(dm) > order(public[post][0])  # posted after its public reply


def test_a_rate_limit_while_several_replies_are_in_flight_parks_nothing_and_loses_nothing(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path, db_url: str
) -> None:
    base = mastodon_server.base_url
    app = start(running_bot, tmp_path, base, db_url)
    posted = post_many(base, QUESTION, 40)
    # The replies are slow to be answered, so several are in flight when the third post gets a 429.
    add_fault(base, effect={"type": "latency", "delay_ms": 150}, path="/api/v1/statuses", methods=["POST"], count=2)
    reset = int(time.time()) + 2
    add_fault(
        base,
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": str(reset)}},
        path="/api/v1/statuses",
        methods=["POST"],
        count=1,
    )

    (report,) = run_once(app)

    assert report.paused and report.error is not None and "RateLimited" in report.error
    stored = [r for m in app.storage.mentions.all() for r in app.storage.replies.for_mention(m.id)]
    assert len(stored) == 40
    assert {r.state for r in stored} <= {ReplyState.SENT, ReplyState.APPROVED}  # none parked, none claimed
    waiting = [r for r in stored if r.state is ReplyState.APPROVED]
    assert waiting and all(r.attempts == 0 for r in waiting)  # a 429 is no attempt of the reply's

    settle(app, lambda: all(post in answers(base) for post in posted))
    replies = answers(base)
    assert {post: len(replies[post]) for post in posted} == dict.fromkeys(posted, 1)


def test_sending_one_at_a_time_still_drains_the_backlog(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path
) -> None:
    base = mastodon_server.base_url
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=[configs.mastodon_account(base, name=ACCOUNT)],
        sections=DAEMON.replace("send_concurrency: 4", "send_concurrency: 1"),
    )
    app = running_bot(load_config(path, {"BRAND_TOKEN": "brand_token"}))
    posted = post_many(base, QUESTION, 60)

    (report,) = run_once(app)

    assert report.sent.sent == 60
    replies = answers(base)
    assert {post: len(replies.get(post, [])) for post in posted} == dict.fromkeys(posted, 1)


def settle(app: App, done: Callable[[], bool], rounds: int = 20) -> None:
    """Run cycles until `done()`, letting the pause pass between them."""
    for _ in range(rounds):
        run_once(app)
        if done():
            return
        state = app.storage.accounts.get(ACCOUNT)
        if state is not None and state.paused_until is not None:
            time.sleep(max(0.0, state.paused_until.timestamp() - time.time()) + 0.05)
    raise AssertionError("not settled")


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")


def test_replies_slow_to_post_keep_no_database_connection_from_the_other_senders(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow platform must not pass for a database outage. Each sender used to keep a connection from the
    pool across its post: with more senders than connections (a few accounts at `send_concurrency` 8 outnumber
    the pool's 15) and posts slower than the pool's wait, a sender waiting for a connection gave up, and the
    cycle stopped sending with the database 'unavailable'. Here: 4 senders, a pool of 2 that waits 1 s,
    posts that take 2 s."""
    monkeypatch.setattr(engine_module, "POOL_SIZE", 2)
    monkeypatch.setattr(engine_module, "POOL_OVERFLOW", 0)
    monkeypatch.setattr(engine_module, "POOL_WAIT", 1.0)
    base = mastodon_server.base_url
    app = start(running_bot, tmp_path, base, db_url)
    posted = post_many(base, QUESTION, len(CUSTOMERS))  # one each: a lane each, sent side by side
    add_fault(base, effect={"type": "latency", "delay_ms": 2000}, path="/api/v1/statuses", methods=["POST"], count=8)

    (report,) = run_once(app)

    assert report.error is None
    assert report.sent.sent == len(posted)
    replies = answers(base)
    assert {post: len(replies.get(post, [])) for post in posted} == dict.fromkeys(posted, 1)
