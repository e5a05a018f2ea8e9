"""A backlog on mastodon-mock: one cycle reads every page and sends every due reply, several at once.

What a support lead checks afterwards: on the server, each mention has exactly one public reply (and its
private follow-up after it, where there is one); nothing waits in the queue that should not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer

from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.cycle import run_cycle
from bot.run.daemon import run_once
from bot.storage import engine as engine_module
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, CUSTOMERS, add_fault, client, post_as, token_of

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


def brand_statuses(base_url: str, brand: str = BRAND) -> list[dict[str, Any]]:
    """Everything the brand posted, oldest first."""
    with client(base_url, brand) as api:
        me = api.account_verify_credentials()
        statuses: list[dict[str, Any]] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            statuses.extend(page)
            page = api.fetch_next(page)
    return sorted(statuses, key=lambda s: (len(str(s["id"])), str(s["id"])))


def answers(base_url: str, direct: bool = False, brand: str = BRAND) -> dict[str, list[str]]:
    """The brand's public replies (or private follow-ups), by the status they answer: their ids."""
    found: dict[str, list[str]] = {}
    for status in brand_statuses(base_url, brand):
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


def test_a_slow_read_of_the_blocked_list_keeps_no_database_connection_from_the_other_accounts(
    mastodon_server: MockServer, running_bot: StartBot, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for reading. A reader re-reads the brand's blocked and muted lists once a minute (up to ten
    pages each), before it decides a new mention; it used to keep the connection of the page it was storing
    across that wait. The daemon reads its accounts side by side: with more accounts than connections and a
    slow platform, an account waiting for a connection gave up, and its cycle failed with the database
    'unavailable'. Here: three accounts read at once, a pool of 2 that waits 1 s, a blocked list that takes
    2 s to come."""
    monkeypatch.setattr(engine_module, "POOL_SIZE", 2)
    monkeypatch.setattr(engine_module, "POOL_OVERFLOW", 0)
    monkeypatch.setattr(engine_module, "POOL_WAIT", 1.0)
    base = mastodon_server.base_url
    brands = {f"acme-{name}": name for name in (BRAND, "alice", "boris")}  # three brands on one server
    accounts = [
        configs.mastodon_account(base, name=account, token=f"${{{name.upper()}_TOKEN}}")
        for account, name in brands.items()
    ]
    path = configs.write_config(tmp_path, db_url=db_url, accounts=accounts, sections=DAEMON)
    app = running_bot(load_config(path, {f"{name.upper()}_TOKEN": token_of(name) for name in brands.values()}))
    question = "@{} how do I reset my password?"
    posted = {
        name: [str(post_as(base, who, question.format(name))["id"]) for who in ("dewi", "layla")]
        for name in brands.values()
    }
    add_fault(base, effect={"type": "latency", "delay_ms": 2000}, path="/api/v1/blocks", methods=["GET"], count=3)

    failures: dict[str, str] = {}

    def cycle(account: str) -> None:  # one account's cycle, as a thread of the daemon's pool runs it
        try:
            report = run_cycle(app, app.config.account(account))
        except Exception as exc:  # the daemon's job would log it: the account's cycle failed
            failures[account] = repr(exc)
        else:
            if report.error is not None:
                failures[account] = report.error

    threads = [threading.Thread(target=cycle, args=(account,)) for account in brands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert httpx.get(f"{base}/api/v1/_mock/faults", timeout=10).json() == []  # each account waited on the list
    assert failures == {}
    for name, posts in posted.items():
        replies = answers(base, brand=name)
        assert {post: len(replies.get(post, [])) for post in posts} == dict.fromkeys(posts, 1), name
