"""The whole bot on X: the fake X behind `prism proxy --errors`, so every request and answer is on-spec."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.cli import main as carebot
from bot.config import Config, load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from bot.run.status import account_status
from bot.web.asgi import create_app
from connectors.x_text import text_length
from tests import configs
from tests.conftest import StartBot
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


def test_x_rules_stop_and_not_addressed(x_bot: tuple[App, XPeer]) -> None:
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
    # Dan answers our reply; X writes "@AcmeCare thanks, that worked!" (the handle outside
    # display_text_range): not addressed to the brand, so no automated reply.
    followup = peer.fake.post("dan", "thanks, that worked!", in_reply_to=replies[thread_root][0]["id"])
    run_once(app)
    assert followup not in replies_to(peer)
    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    assert stored[followup].mention.text == f"@{handle} thanks, that worked!"
    assert "does not address the brand" in stored[followup].reason
    status = account_status(app.storage, app.config.accounts[0])
    assert status["billed"]["post_created"] == 1 == peer.fake.bill["post_created"]


def test_status_shows_what_x_billed(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    running_bot: StartBot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`carebot status` against the fake's own bill: every request and every billed object, by kind, at
    pay-per-use prices, including a reply whose answer was lost and that a lookup found."""
    fake = x_peer.fake
    daemon = "daemon:\n  max_replies_per_author_hour: 10\n  retry_backoff: 100ms\n"
    account = configs.x_account(x_peer.base_url, tier="pay-per-use", timeout="1s")
    config_path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=daemon)
    app = running_bot(load_config(config_path, {"X_TOKEN": str(BRAND.bearer_token)}))
    brand_post = fake.post(BRAND.username, "Our new plans are out")
    answered = post_all(x_peer, (POSTS[0], POSTS[5], POSTS[9]))
    quoted = f"@{BRAND.username} how can I contact your support team about this? is there an email?"
    answered[fake.post("omar", quoted, quote=brand_post)] = POSTS[0]
    fake.post("dan", "thanks!", in_reply_to=brand_post)  # read and billed, not addressed
    run_once(app)
    lost = fake.post("layla", POSTS[11].for_brand(BRAND.username), lang="ar")
    fake.delay_next(3, method="POST", path="/2/tweets")  # made on X, its answer lost
    run_once(app)
    for _ in range(20):  # until the lost answer's reply is found on X and recorded as sent
        run_once(app)
        if account_status(app.storage, app.config.accounts[0])["sent"] == len(answered) + 1:
            break
        time.sleep(0.2)
    assert all(len(replies_to(x_peer)[post_id]) == 1 for post_id in [*answered, lost])

    capsys.readouterr()
    monkeypatch.setenv("X_TOKEN", str(BRAND.bearer_token))  # the CLI reads the config's secrets from there
    assert carebot(["status", "--json", "--config", str(config_path)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert carebot(["status", "--config", str(config_path)]) == 0
    shown = capsys.readouterr().out

    bill = dict(fake.bill)
    assert row["billed"] == {kind: bill.get(kind, 0) for kind in row["billed"]}
    assert sum(bill.values()) == sum(row["billed"].values())  # no kind the fake billed is missing
    assert row["billed"]["post_created"] == len(answered) + 1  # the lost answer's post counted too
    # Every request carebot made: those the fake saw, and on v2.159 the one Prism refused (asked in the
    # current vocabulary) before the connector spoke the server's.
    assert row["requests"] == len(fake.requests) + (1 if x_peer.version == "v2.159" else 0)
    prices = {"owned_read": 0.001, "post_read": 0.005, "user_read": 0.010, "post_created": 0.015}
    expected = sum(count * prices.get(kind, 0.2) for kind, count in bill.items())
    assert row["estimated_spend_usd"] == pytest.approx(expected, abs=1e-4)
    assert row["sent"] == len(answered) + 1 and row["plan"] == "pay-per-use"
    assert f"requests {row['requests']} · owned reads {bill['owned_read']}" in shown
    assert f"posts {bill['post_created']}" in shown and f"${expected:.2f} in all" in shown


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


# -- a reply that would carry a link: a person decides, the cost shown -------------------------------------

CONTACT = f"@{BRAND.username} how can I contact your support team? is there an email?"


def link_bot(
    tmp_path: Path, peer: XPeer, db_url: str, running_bot: StartBot, brand: str, mode: str
) -> tuple[App, Path]:
    account = configs.x_account(peer.base_url, tier="pay-per-use", mode=mode)
    daemon = "daemon:\n  max_replies_per_author_hour: 10\n  retry_backoff: 100ms\n"
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=daemon, brand=brand)
    return running_bot(load_config(path, {"X_TOKEN": str(BRAND.bearer_token)})), path


def test_a_brand_named_like_a_domain_makes_a_reply_wait_for_a_person(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    running_bot: StartBot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'Bit.ly' is a link to X (twitter-text), billed $0.20 instead of $0.015: a reply naming the brand
    waits for a person, who sees the cost and must accept it."""
    fake = x_peer.fake
    fake.clock = lambda: datetime(2031, 3, 30, 12, tzinfo=UTC).timestamp()  # fixed post ids: fixed drafts
    brand = "brand:\n  name: Bit.ly\n  support_email: help@acme.example\n"
    app, path = link_bot(tmp_path, x_peer, db_url, running_bot, brand, mode="auto")
    posted = [fake.post(f"user{n}", CONTACT) for n in range(6)]
    run_once(app)

    stored = {m.mention.post_id: m for m in app.storage.mentions.all()}
    drafts = {p: app.storage.replies.for_mention(stored[p].id)[0] for p in posted}
    linked = [p for p in posted if "Bit.ly" in drafts[p].text]
    assert linked and len(linked) < len(posted)  # some variants name the brand, some do not
    for post_id in posted:
        if post_id in linked:
            assert drafts[post_id].state is ReplyState.PENDING and post_id not in replies_to(x_peer)
            assert (
                "carries a link (Bit.ly)" in stored[post_id].reason
                and "$0.200 instead of $0.015" in stored[post_id].reason
            )
        else:
            assert drafts[post_id].state is ReplyState.SENT

    monkeypatch.setenv("X_TOKEN", str(BRAND.bearer_token))
    reply = drafts[linked[0]]
    capsys.readouterr()
    assert carebot(["queue", "approve", str(reply.id), "--config", str(path)]) == 1
    assert "$0.200 instead of $0.015" in capsys.readouterr().err
    assert carebot(["queue", "approve", str(reply.id), "--accept-cost", "--config", str(path)]) == 0
    run_once(app)
    assert [p["text"] for p in replies_to(x_peer)[linked[0]]] == [reply.text]
    assert (
        fake.bill["post_with_url"]
        == 1
        == account_status(app.storage, app.config.accounts[0])["billed"]["post_with_url"]
    )


def test_an_edit_that_adds_a_link_is_approved_only_with_its_cost_accepted(
    tmp_path: Path,
    x_peer: XPeer,
    db_url: str,
    running_bot: StartBot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, path = link_bot(tmp_path, x_peer, db_url, running_bot, configs.EMAIL_ONLY_BRAND_YAML, mode="approve")
    post_id = x_peer.fake.post("rina", CONTACT)
    run_once(app)
    [item] = app.storage.replies.queue()
    edit = "@rina Hi! Everything is at acme.com/help and help@acme.example"
    monkeypatch.setenv("X_TOKEN", str(BRAND.bearer_token))
    capsys.readouterr()

    assert carebot(["queue", "approve", str(item.reply.id), "--text", edit, "--config", str(path)]) == 1
    assert "carries a link (acme.com/help)" in capsys.readouterr().err
    assert app.storage.replies.get(item.reply.id).state is ReplyState.PENDING
    approve = ["queue", "approve", str(item.reply.id), "--text", edit, "--accept-cost", "--config", str(path)]
    assert carebot(approve) == 0
    run_once(app)

    assert [p["text"] for p in replies_to(x_peer)[post_id]] == [edit]
    assert x_peer.fake.bill["post_with_url"] == 1 and x_peer.fake.bill["post_created"] == 0


def test_an_automated_reply_that_gained_a_link_is_held_back_by_the_outbox(
    tmp_path: Path, x_peer: XPeer, db_url: str, running_bot: StartBot
) -> None:
    """The last guard: whatever made the words (a reword, a playbook edit), an automated reply carrying a
    link is not posted; it is parked with the reason and the cost, for a person to retry or reject."""
    app, _path = link_bot(tmp_path, x_peer, db_url, running_bot, configs.EMAIL_ONLY_BRAND_YAML, mode="approve")
    post_id = x_peer.fake.post("rina", CONTACT)
    run_once(app)
    [item] = app.storage.replies.queue()
    app.storage.replies.reword(item.reply.id, "@rina See shop.de for help", item.reply.template_id)  # approved
    run_once(app)

    parked = app.storage.replies.get(item.reply.id)
    assert parked.state is ReplyState.FAILED and post_id not in replies_to(x_peer)
    assert "carries a link (shop.de)" in (parked.last_error or "")
    app.storage.replies.retry(parked.id, "lead")  # a person, who saw the cost
    run_once(app)
    assert len(replies_to(x_peer)[post_id]) == 1


def test_the_desk_shows_the_cost_of_a_link_and_an_account_paused_by_its_cap(
    tmp_path: Path, x_peer: XPeer, db_url: str, running_bot: StartBot
) -> None:
    account = configs.x_account(x_peer.base_url, tier="pay-per-use", mode="approve")
    web = 'web:\n  admin_token: "desk-token-for-a-test"\n  secret_key: "desk-cookie-key-for-a-test"\n'
    path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=web)
    app = running_bot(load_config(path, {"X_TOKEN": str(BRAND.bearer_token)}))
    x_peer.fake.post("rina", CONTACT)
    run_once(app)
    [item] = app.storage.replies.queue()
    until = datetime(2031, 4, 1, tzinfo=UTC)
    app.storage.accounts.update("acme-x", paused_until=until, pause_reason="usage cap reached: 100 post reads a month")

    with TestClient(create_app(app.config, app.storage, app.classifier, app.playbooks), follow_redirects=False) as desk:
        login = desk.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)
        assert csrf is not None
        desk.post("/login", data={"csrf": csrf.group(1), "token": "desk-token-for-a-test", "next": "/"})
        page = desk.get("/").text
        assert "acme-x is paused until 2031-04-01 00:00 UTC: usage cap reached" in page
        assert 'name="accept_cost"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "shown": item.reply.text, "text": "@rina All at acme.com/help"}
        refused = desk.post(f"/replies/{item.reply.id}/approve", data=form)
        assert refused.status_code == 422 and "$0.200 instead of $0.015" in refused.text
        assert "@rina All at acme.com/help" in refused.text  # the edit is kept
        accepted = desk.post(f"/replies/{item.reply.id}/approve", data={**form, "accept_cost": "1"})
        assert accepted.status_code == 303
    assert app.storage.replies.get(item.reply.id).state is ReplyState.APPROVED
