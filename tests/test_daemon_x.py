"""The whole bot on X: the fake X behind `prism proxy --errors`, so every request and answer is on-spec."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from bot.run.status import account_status
from connectors.x_text import text_length
from tests import configs
from tests.peers.x import XPeer
from tests.peers.x_fake import BRAND, DUPLICATE_DETAIL
from tests.scenarios import ANSWERED, PERSONAL_DATA, POSTS, SCRIPTS, Scenario

pytestmark = pytest.mark.slow  # the whole bot against the fake X behind Prism


def config_for(tmp_path: Path, peer: XPeer, db_url: str, mode: str = "auto") -> Config:
    daemon = "daemon:\n  max_replies_per_author_hour: 10\n  retry_backoff: 100ms\n" + configs.SEPARATE_POSTS
    account = configs.x_account(peer.base_url, mode=mode)
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=daemon)
    return load_config(path, {"X_TOKEN": str(BRAND.bearer_token)})


@pytest.fixture
def x_bot(tmp_path: Path, x_peer: XPeer, db_url: str) -> Iterator[tuple[App, XPeer]]:
    app = App.build(config_for(tmp_path, x_peer, db_url))
    run_once(app)  # the first cycle starts reading from now
    yield app, x_peer
    app.close()


def post_all(peer: XPeer, posts: tuple[Scenario, ...]) -> dict[str, Scenario]:
    return {peer.fake.post(p.customer, p.for_brand(BRAND.username), lang=p.lang): p for p in posts}


def replies_to(peer: XPeer) -> dict[str, list[dict[str, object]]]:
    by_target: dict[str, list[dict[str, object]]] = {}
    for post in peer.fake.brand_posts():
        for ref in post.get("referenced_tweets", []):
            if ref["type"] == "replied_to":
                by_target.setdefault(ref["id"], []).append(post)
    return by_target


def test_every_situation_and_language_on_x(x_bot: tuple[App, XPeer]) -> None:
    app, peer = x_bot
    posted = post_all(peer, POSTS)
    run_once(app)
    replies = replies_to(peer)
    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    for post_id, scenario in posted.items():
        assert stored[post_id].situation == scenario.situation, scenario.text
        got = replies.get(post_id, [])
        if scenario.situation not in ANSWERED:
            assert got == [], f"{scenario.situation} got a public reply on X"
            continue
        assert len(got) == 1, scenario.text
        text = str(got[0]["text"])
        assert text.startswith(f"@{scenario.customer}")
        assert text_length(text) <= 280
        assert "http" not in text  # on X a link costs ~13x: replies carry the email
        assert "help@acme.example" in text or scenario.situation in ("simple_question", "price_question")
        if scenario.lang in SCRIPTS:
            assert SCRIPTS[scenario.lang].search(text)
        for personal in PERSONAL_DATA:
            assert personal not in text
    # No automated DMs on X: every brand post is a public reply to a mention.
    assert all(p.get("referenced_tweets") for p in peer.fake.brand_posts())


def test_restart_and_repeat_cycles_post_nothing_twice(tmp_path: Path, x_bot: tuple[App, XPeer], db_url: str) -> None:
    app, peer = x_bot
    post_all(peer, POSTS[:4])
    run_once(app)
    first = len(peer.fake.brand_posts())
    assert first == 4
    run_once(app)
    app.close()
    again = App.build(config_for(tmp_path, peer, db_url))
    try:
        run_once(again)
        run_once(again)
    finally:
        again.close()
    assert len(peer.fake.brand_posts()) == first


def test_approve_mode_posts_only_what_was_approved(tmp_path: Path, x_peer: XPeer, db_url: str) -> None:
    app = App.build(config_for(tmp_path, x_peer, db_url, mode="approve"))
    try:
        run_once(app)
        post_all(x_peer, POSTS[:3])
        run_once(app)
        assert x_peer.fake.brand_posts() == []
        queue = app.storage.replies.queue()
        assert len(queue) == 3
        assert queue[0].mention.situation == "complaint"
        app.storage.replies.approve(queue[0].reply.id, "lead")
        run_once(app)
        run_once(app)
        (posted,) = x_peer.fake.brand_posts()
        assert posted["referenced_tweets"][0]["id"] == queue[0].mention.mention.post_id
    finally:
        app.close()


def test_dry_run_posts_nothing(tmp_path: Path, x_peer: XPeer, db_url: str) -> None:
    app = App.build(config_for(tmp_path, x_peer, db_url, mode="dry-run"))
    try:
        run_once(app)
        post_all(x_peer, POSTS)
        run_once(app)
        run_once(app)
        assert x_peer.fake.brand_posts() == []
        assert len(app.storage.mentions.all()) == len(POSTS)
        states = {r.state for m in app.storage.mentions.all() for r in app.storage.replies.for_mention(m.id)}
        assert states == {ReplyState.DRAFTED}
    finally:
        app.close()


def test_x_rules_stop_not_addressed_and_spend(x_bot: tuple[App, XPeer]) -> None:
    app, peer = x_bot
    handle = BRAND.username
    peer.fake.post("carol", f"@{handle} stop")
    first = peer.fake.post("carol", f"@{handle} my package never arrived, where is it?")
    thread_root = peer.fake.post("dan", f"@{handle} how do I contact you?")
    run_once(app)
    replies = replies_to(peer)
    assert first not in replies  # carol opted out: no automated reply, but the complaint is kept
    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    assert stored[first].situation == "complaint"
    assert thread_root in replies
    # A reply in the thread that does not address the brand gets no automated reply.
    followup = peer.fake.post("dan", "thanks, that worked", in_reply_to=replies[thread_root][0]["id"])
    run_once(app)
    assert followup not in replies_to(peer)
    status = account_status(app.storage, app.config.accounts[0])
    assert status["posts_created"] == 1
    assert status["estimated_spend_usd"] > 0


def test_rate_limit_pauses_and_nothing_is_lost(x_bot: tuple[App, XPeer]) -> None:
    app, peer = x_bot
    posted = post_all(peer, POSTS[:2])
    peer.fake.rate_limit_next(1, reset_in=1.0, path="*/mentions")
    report = run_once(app)[0]
    assert report.paused and peer.fake.brand_posts() == []
    state = app.storage.accounts.get("acme-x")
    assert state is not None and state.paused_until is not None
    time.sleep(max(0.0, (state.paused_until - datetime.now(UTC)).total_seconds()) + 0.1)
    run_once(app)
    assert set(replies_to(peer)) == set(posted)


def test_a_reply_refused_as_duplicate_content_is_reworded_once(x_bot: tuple[App, XPeer]) -> None:
    app, peer = x_bot
    (post_id,) = post_all(peer, POSTS[:1])
    peer.fake.fail_next(403, 1, method="POST", path="*/tweets", detail=DUPLICATE_DETAIL)
    run_once(app)
    (reply,) = app.storage.replies.for_mention(app.storage.mentions.all()[0].id)
    assert peer.fake.brand_posts() == []
    assert reply.reworded and reply.state is ReplyState.APPROVED
    run_once(app)
    (posted,) = replies_to(peer)[post_id]
    assert posted["text"] == app.storage.replies.get(reply.id).text
    assert app.storage.replies.get(reply.id).state is ReplyState.SENT


def test_a_second_duplicate_refusal_parks_the_reply_with_the_reason(x_bot: tuple[App, XPeer]) -> None:
    app, peer = x_bot
    post_all(peer, POSTS[:1])
    peer.fake.fail_next(403, 2, method="POST", path="*/tweets", detail=DUPLICATE_DETAIL)
    run_once(app)
    run_once(app)
    (reply,) = app.storage.replies.for_mention(app.storage.mentions.all()[0].id)
    assert reply.state is ReplyState.FAILED and "DuplicateContent" in (reply.last_error or "")
    assert peer.fake.brand_posts() == []
