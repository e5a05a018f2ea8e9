"""Guards against embarrassment, end to end against mastodon-mock: what the brand's timeline shows.

Never a reply to the brand's own posts, to a blocked or muted author, to someone who said "stop";
a bot-to-bot loop is cut after a few replies; the same template never twice in a row to one person.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.testing import MockServer

from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, add_fault, client, post_as
from tests.test_faults_mastodon import brand_replies

ACCOUNT = "acme-mastodon"


def config(
    tmp_path: Path, base_url: str, *, per_hour: int = 10, handles: str = "[]", join_window: str = "24h"
) -> Config:
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=configs.mastodon_account(base_url, name=ACCOUNT, poll_interval=None),
        sections=f"daemon:\n  retry_backoff: 100ms\n  max_replies_per_author_hour: {per_hour}\n"
        f"cases:\n  join_window: {join_window}\n",
        brand=f"{configs.BRAND_YAML}  handles: {handles}\n",
    )
    return load_config(path, {"BRAND_TOKEN": "brand_token"})


@pytest.fixture
def bot(tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot) -> App:
    return running_bot(config(tmp_path, mastodon_server.base_url))


def new_user(base_url: str, username: str, *, bot: bool = False) -> Mastodon:
    answer = httpx.post(f"{base_url}/api/v1/_mock/dev_user", json={"username": username}, timeout=10)
    answer.raise_for_status()
    api = Mastodon(access_token=answer.json()["access_token"], api_base_url=base_url, ratelimit_method="throw")
    if bot:
        api.account_update_credentials(bot=True)
    return api


def account_id(base_url: str, username: str) -> str:
    with client(base_url, username) as api:
        return str(api.account_verify_credentials()["id"])


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def stored(app: App, post_id: str) -> Any:
    (found,) = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    return found


QUESTION = "@brand how can I contact your support team? is there an email?"


def test_the_brand_never_answers_its_own_posts_or_its_other_handles(
    tmp_path: Path,
    mastodon_server: MockServer,
    running_bot: StartBot,
) -> None:
    base = mastodon_server.base_url
    app = running_bot(config(tmp_path, base, handles="[acme_team]"))
    team = new_user(base, "acme_team")
    from_team = str(team.status_post("@brand customers ask how to contact support, is there an email?")["id"])
    team.session.close()
    own = str(post_as(base, BRAND, "@brand how can I contact your support team?")["id"])
    customer = str(post_as(base, "alice", QUESTION)["id"])
    run_once(app)
    replies = brand_replies(base)
    assert from_team not in replies and own not in replies
    assert len(replies[customer]) == 1
    assert stored(app, from_team).action == "ignore"
    assert "own post" in stored(app, from_team).reason
    # The customer answers the brand's reply; the brand's reply itself is never a mention to answer.
    (reply,) = replies[customer]
    follow_up = str(
        post_as(base, "alice", "@brand thanks! and is there a phone line?", in_reply_to_id=reply["id"])["id"]
    )
    run_once(app)
    run_once(app)
    replies = brand_replies(base)
    assert str(reply["id"]) not in replies  # nothing answers the brand's own reply
    assert stored(app, follow_up).action == "reply"  # the customer's answer in the thread is heard


def test_blocked_and_muted_authors_get_no_reply(bot: App, mastodon_server: MockServer) -> None:
    base = mastodon_server.base_url
    with client(base, BRAND) as api:
        api.account_block(account_id(base, "boris"))
        api.account_mute(account_id(base, "dewi"))
    blocked = str(post_as(base, "boris", "@brand my order never arrived, where is my money?")["id"])
    muted = str(post_as(base, "dewi", QUESTION)["id"])
    welcome = str(post_as(base, "alice", QUESTION)["id"])
    run_once(bot)
    run_once(bot)
    replies = brand_replies(base)
    assert blocked not in replies and muted not in replies
    assert len(replies[welcome]) == 1
    for post_id in (blocked, muted):
        assert stored(bot, post_id).action == "ignore"
        assert "blocked or muted" in stored(bot, post_id).reason
        assert bot.storage.replies.for_mention(stored(bot, post_id).id) == []


def test_a_reply_in_flight_is_not_sent_once_the_author_is_blocked(
    bot: App, mastodon_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = bot.connector(bot.config.accounts[0])
    monkeypatch.setattr(connector._ignored, "ttl", 0.0)  # re-read the block list every time
    base = mastodon_server.base_url
    post_id = str(post_as(base, "boris", QUESTION)["id"])
    add_fault(base, effect={"type": "status", "status": 503}, path="/api/v1/statuses", methods=["POST"])
    run_once(bot)
    reply = bot.storage.replies.for_mention(stored(bot, post_id).id)[0]
    assert reply.state is ReplyState.APPROVED and reply.attempts == 1  # waiting for its retry
    with client(base, BRAND) as api:
        api.account_block(account_id(base, "boris"))
    for _ in range(3):
        time.sleep(0.15)  # past the retry delay
        run_once(bot)
    assert brand_replies(base) == {}
    parked = bot.storage.replies.get(reply.id)
    assert parked.state is ReplyState.FAILED and "blocked or muted" in (parked.last_error or "")


def test_an_author_who_said_stop_gets_no_more_automated_replies(bot: App, mastodon_server: MockServer) -> None:
    base = mastodon_server.base_url
    stop = str(post_as(base, "alice", "@brand stop replying to me")["id"])
    run_once(bot)
    later = str(post_as(base, "alice", "@brand my order never arrived and I was charged twice")["id"])
    other = str(post_as(base, "boris", "@brand как связаться со службой поддержки? дайте почту")["id"])
    run_once(bot)
    replies = brand_replies(base)
    assert stop not in replies and later not in replies
    assert len(replies[other]) == 1
    assert "no automated replies" in stored(bot, later).reason
    assert stored(bot, later).situation == "complaint"  # still recorded as what it is, for the team


def test_a_bot_account_never_gets_an_automated_reply(bot: App, mastodon_server: MockServer) -> None:
    base = mastodon_server.base_url
    other_bot = new_user(base, "helpdesk_bot", bot=True)
    try:
        post_id = str(other_bot.status_post(QUESTION)["id"])
    finally:
        other_bot.session.close()
    run_once(bot)
    assert post_id not in brand_replies(base)
    assert "bot" in stored(bot, post_id).reason


def test_a_bot_to_bot_loop_is_cut_after_the_hourly_limit(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    """An auto-responder not flagged as a bot answers every reply of ours. Its answers are in the thread of
    one case: the bot answers once, sends one holding reply, and then a person decides."""
    base = mastodon_server.base_url
    app = running_bot(config(tmp_path, base, per_hour=2))
    loop = new_user(base, "autoresponder")
    try:
        target: Any = None
        for turn in range(5):
            status = loop.status_post(
                f"@brand how can I contact your support team? (ticket {turn})", in_reply_to_id=target
            )
            run_once(app)
            ours = brand_replies(base).get(str(status["id"]), [])
            target = ours[0]["id"] if ours else status["id"]
    finally:
        loop.session.close()
    app.close()
    app = running_bot(config(tmp_path, base, per_hour=2))  # a restart forgets nothing
    answered = [r for rs in brand_replies(base).values() for r in rs]
    assert len(answered) == 2
    (case,) = [c for c in app.storage.cases.listed() if c.author_handle == "autoresponder"]
    assert len(app.storage.cases.posts(case.id)) == 5
    assert case.state == "waiting_on_us" and case.customer_replied
    purposes = sorted(r.purpose for r in app.storage.cases.replies(case.id) if r.state.value == "sent")
    assert purposes == ["answer", "holding"]


def test_the_same_template_is_never_posted_twice_in_a_row_to_one_person(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    """Separate questions, each its own case (a join window of a millisecond): the wording still varies."""
    base = mastodon_server.base_url
    bot = running_bot(config(tmp_path, base, join_window="1ms"))
    texts: list[str] = []
    templates: list[str | None] = []
    for question in (
        "@brand how can I contact your support team?",
        "@brand is there an email for support?",
        "@brand how do I reach customer service?",
    ):
        post_id = str(post_as(base, "alice", question)["id"])
        run_once(bot)
        (reply,) = brand_replies(base)[post_id]
        texts.append(plain(reply["content"]))
        templates.append(bot.storage.replies.for_mention(stored(bot, post_id).id)[0].template_id)
    assert all(a != b for a, b in itertools.pairwise(templates)), templates
    assert all(a != b for a, b in itertools.pairwise(texts)), texts
