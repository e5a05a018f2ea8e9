"""The X connector against real peers: Prism serving X's spec, and the stateful fake behind Prism.

Every test that uses them runs against both spec versions (v2.159, "tweets"; v2.167, "posts")."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import use_clock
from bot.config import load_config
from bot.run.app import connector_settings as app_settings
from connectors.base import (
    AuthFailed,
    Author,
    BadResponse,
    ConnectorSettings,
    DuplicateContent,
    Mention,
    RateLimited,
    Rejected,
    Unavailable,
    Unreachable,
    UsageCapped,
)
from connectors.x import PLATFORM, XConnector
from connectors.x_budget import XBudget, month_start, next_month
from connectors.x_errors import retry_after
from connectors.x_posts import mentions_from
from connectors.x_tiers import PAY_PER_USE_PRICES, plan_for
from tests.peers.x import VERSIONS, MemoryLedger, XPeer, free_port, x_settings
from tests.peers.x_fake import BRAND, FakeX
from tests.peers.x_fake_shape import VOCABULARIES

ROOT = Path(__file__).resolve().parents[1]
AUTH_MODES = ["oauth2", "oauth1"]
SECRETS = ("fake-consumer-secret", "fake-access-secret", str(BRAND.bearer_token))


Connect = Callable[[ConnectorSettings], XConnector]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Build connectors that are all closed when the test ends."""
    made: list[XConnector] = []

    def make(settings: ConnectorSettings) -> XConnector:
        connector = XConnector(settings)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def a_mention(post_id: str) -> Mention:
    """A mention as the core stores it, for posts Prism or the fake need not have listed."""
    return Mention(
        platform="x",
        post_id=post_id,
        cursor=post_id,
        author=Author(id="1000000099", handle="someone"),
        text="@AcmeCare hi",
        created_at=datetime.now(UTC),
    )


def mention_requests(peer: XPeer) -> list[dict[str, str]]:
    return [r.query for r in peer.fake.requests if r.path.endswith("/mentions")]


# -- contract: every request carebot makes is one X's spec accepts (Prism mock) ---------------


def known_account(handle: str = "AcmeCare", user_id: str = "1346889436626259000") -> MemoryLedger:
    """A ledger in which an earlier process already learnt who the account is (users/me)."""
    me = {"id": user_id, "username": handle, "at": datetime.now(UTC).isoformat()}
    return MemoryLedger({"version": 1, "me": me})


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_every_request_is_valid_against_xs_spec(x_prism_mock: str, connect: Connect, auth: str) -> None:
    connector = connect(x_settings(x_prism_mock, auth=auth, tier="pro"))
    account = connector.verify()
    assert account.handle and account.max_characters == 280
    # v2.167 types a user id as any string, so Prism's random one may not fit the paths (digits only):
    # go on as the account a real X would name.
    connector = connect(x_settings(x_prism_mock, auth=auth, tier="pro"))
    connector.attach_ledger(known_account(account.handle))
    assert connector.fetch_mentions(None, 20).mentions == []
    try:
        page = connector.fetch_mentions("1346889436626259968", 20)
        assert len(page.mentions) <= 20
    except BadResponse as exc:
        # Prism's random answers always carry the same next_token: paging got as far as a
        # second, equally accepted request before the connector refused to loop. (v2.167 types a
        # post id as any string: Prism's random ones are no snowflakes, which carebot refuses.)
        assert "repeated a token" in str(exc) or "without a valid id" in str(exc)
    mention = a_mention("1346889436626259968")
    posted = connector.reply(mention, "Sorry about that. Could you write to help@acme.example?", "key-1")
    assert posted.post_id.isdigit()
    found = connector.find_reply(a_mention("1346889436626259969"), "key-2", thorough=True)
    assert found is None or found.post_id.isdigit()
    assert connector.usage()["requests"] >= 6


def test_prism_refuses_what_the_spec_does_not_allow(x_prism_mock: str, connect: Connect) -> None:
    # The negative control for the test above: an off-spec request (a since_id that is not
    # a post id) comes back 4xx and the connector reports it as a permanent refusal.
    connector = connect(x_settings(x_prism_mock))
    connector.attach_ledger(known_account())
    with pytest.raises(Rejected, match="422"):
        connector.find_reply(a_mention("not-a-post-id"), "key-1")


# -- behaviour: the stateful fake behind `prism proxy --errors` -----------------------------------


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_verify_names_the_brand_account(x_peer: XPeer, connect: Connect, auth: str) -> None:
    account = connect(x_peer.settings(auth=auth)).verify()
    assert (account.id, account.handle, account.max_characters) == (BRAND.id, "AcmeCare", 280)


def test_mentions_carry_author_thread_and_quoted_post(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    cursor = "1"
    brand_post = fake.post("AcmeCare", "Our new app is out")
    question = fake.post("rina", "@AcmeCare apakah ada diskon & promo?", in_reply_to=brand_post, lang="in")
    quote = fake.post("omar", "@AcmeCare لماذا السعر مرتفع؟", quote=brand_post, lang="ar")

    page = connector.fetch_mentions(cursor, 50)

    assert [m.post_id for m in page.mentions] == [question, quote]
    first, second = page.mentions
    assert first.author.handle == "rina" and first.author.display_name == "Rina"
    # X put the handle of the post answered in front; Rina wrote the brand's handle herself too.
    assert first.text == "@AcmeCare @AcmeCare apakah ada diskon & promo?"  # X's &amp; unescaped
    assert first.in_reply_to_id == brand_post and first.in_reply_to_author_id == BRAND.id
    assert first.conversation_id == brand_post
    assert first.language == "id" and first.mentions_brand  # X's legacy "in" is Indonesian
    assert first.url == f"https://x.com/rina/status/{question}"
    assert second.extra["referenced"] == [
        {"type": "quoted", "id": brand_post, "author_id": BRAND.id, "text": "Our new app is out"}
    ]
    assert second.extra["quotes_brand"] and second.language == "ar"
    assert page.next_cursor == quote and not page.has_more


def test_reply_in_the_thread_without_naming_the_brand_is_not_addressed_to_it(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    brand_post = fake.post("AcmeCare", "Maintenance tonight")
    other = fake.post("dana", "thanks, that worked!", in_reply_to=brand_post)
    named = fake.post("erin", "@AcmeCare and mine still fails", in_reply_to=brand_post)

    page = connect(x_peer.settings()).fetch_mentions("1", 50)

    # Both texts start with "@AcmeCare": X put it there, outside display_text_range; only Erin wrote it.
    assert [m.text for m in page.mentions] == [
        "@AcmeCare thanks, that worked!",
        "@AcmeCare @AcmeCare and mine still fails",
    ]
    assert [(m.post_id, m.mentions_brand) for m in page.mentions] == [(other, False), (named, True)]


def test_first_poll_starts_from_now(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    old = [fake.post("ana", f"@AcmeCare old {i}") for i in range(3)]

    start = connector.fetch_mentions(None, 50)
    new = fake.post("ana", "@AcmeCare new")
    after = connector.fetch_mentions(start.next_cursor, 50)

    assert start.mentions == [] and start.next_cursor == old[-1]
    assert [m.post_id for m in after.mentions] == [new]


def test_pages_through_everything_after_the_cursor_oldest_first(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    cursor = fake.post("ana", "@AcmeCare before the cursor")
    posted = [fake.post(f"user{i % 7}", f"@AcmeCare number {i}") for i in range(230)]

    page = connect(x_peer.settings()).fetch_mentions(cursor, 1000)

    assert [m.post_id for m in page.mentions] == posted
    assert page.next_cursor == posted[-1] and not page.has_more
    queries = mention_requests(x_peer)
    assert len(queries) == 3  # 100 + 100 + 30, each after the same since_id
    assert {q["since_id"] for q in queries} == {cursor}
    assert all(q["max_results"] == "100" for q in queries)


def test_more_than_limit_waiting_returns_the_oldest_and_skips_none(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    cursor = fake.post("ana", "@AcmeCare start")
    posted = [fake.post("bo", f"@AcmeCare {i}") for i in range(25)]

    seen: list[str] = []
    first = connector.fetch_mentions(cursor, 10)
    seen += [m.post_id for m in first.mentions]
    late = fake.post("cy", "@AcmeCare arrived while we were busy")
    cursor = first.next_cursor
    while True:
        page = connector.fetch_mentions(cursor, 10)
        seen += [m.post_id for m in page.mentions]
        if not page.has_more:
            break
        cursor = page.next_cursor

    assert first.has_more and first.next_cursor == posted[9]
    assert [m.post_id for m in first.mentions] == posted[:10]
    assert seen == [*posted, late]


def test_the_endpoint_keeps_only_the_latest_800(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    posted = [fake.post("bo", f"@AcmeCare {i}") for i in range(805)]

    page = connect(x_peer.settings()).fetch_mentions("1", 1000)

    assert [m.post_id for m in page.mentions] == posted[5:]  # as on X: older ones are gone


def test_rate_limit_pauses_until_reset_and_loses_nothing(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    waiting = fake.post("ana", "@AcmeCare hello?")
    fake.rate_limit_next(reset_in=30, path="/2/users/*/mentions")

    with pytest.raises(RateLimited) as caught:
        connector.fetch_mentions("1", 10)
    page = connector.fetch_mentions("1", 10)

    assert 1 <= caught.value.retry_after <= 31
    assert connector.budget().remaining == 899  # the answer after the pause
    assert [m.post_id for m in page.mentions] == [waiting]


def test_budget_follows_the_rate_limit_headers_and_a_spent_budget_is_a_429(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    fake.set_limit("GET mentions", 2)
    connector = connect(x_peer.settings())

    connector.fetch_mentions("1", 10)
    budget = connector.budget()
    connector.fetch_mentions("1", 10)
    with pytest.raises(RateLimited) as caught:
        connector.fetch_mentions("1", 10)

    assert (budget.remaining, budget.limit) == (1, 2)
    assert budget.reset_at is not None and budget.reset_at > datetime.now(UTC)
    assert connector.budget().remaining == 0
    assert caught.value.retry_after > 60  # until the end of the 15-minute window


def test_reply_posts_in_the_thread_of_the_mention(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    fake.post("rina", "@AcmeCare my order never came")
    mention = connector.fetch_mentions("1", 10).mentions[0]

    posted = connector.reply(mention, "We're sorry, Rina. Could you email help@acme.example?", "r-1")

    [reply] = fake.brand_posts()
    assert reply["id"] == posted.post_id
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": mention.post_id}]
    assert reply["text"] == "We're sorry, Rina. Could you email help@acme.example?"
    assert posted.url == f"https://x.com/AcmeCare/status/{posted.post_id}"
    assert connector.usage()["post_created"] == 1 == fake.bill["post_created"]


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_the_same_key_posts_once(x_peer: XPeer, connect: Connect, auth: str) -> None:
    connector = connect(x_peer.settings(auth=auth))
    x_peer.fake.post("rina", "@AcmeCare hi")
    mention = connector.fetch_mentions("1", 10).mentions[0]

    first = connector.reply(mention, "Hello Rina!", "same-key")
    again = connector.reply(mention, "Hello Rina!", "same-key")

    assert first == again and len(x_peer.fake.brand_posts()) == 1


def test_identical_text_is_duplicate_content(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    fake.post("ana", "@AcmeCare one")
    fake.post("bo", "@AcmeCare two")
    first, second = connector.fetch_mentions("1", 10).mentions
    connector.reply(first, "Thanks, we're looking into it.", "k-1")

    with pytest.raises(DuplicateContent, match="duplicate content"):
        connector.reply(second, "Thanks, we're looking into it.", "k-2")
    assert len(fake.brand_posts()) == 1


def test_x_refuses_a_reply_to_someone_who_did_not_address_the_brand(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    brand_post = fake.post("AcmeCare", "Maintenance tonight")
    fake.post("dana", "ok thanks", in_reply_to=brand_post, reply_handles=False)  # she took the handle out
    connector = connect(x_peer.settings())
    [mention] = connector.fetch_mentions("1", 10).mentions

    assert mention.text == "ok thanks" and not mention.mentions_brand
    with pytest.raises(Rejected, match="not been mentioned"):
        connector.reply(mention, "You're welcome!", "k")
    assert len(fake.brand_posts()) == 1  # only the brand's own post


def test_too_long_reply_is_refused_before_any_request(x_peer: XPeer, connect: Connect) -> None:
    connector = connect(x_peer.settings())
    with pytest.raises(Rejected, match="281 weighted"):
        connector.reply(a_mention("1346889436626259968"), "a" * 279 + "你", "k")
    assert x_peer.fake.requests == []


def test_automated_direct_messages_are_refused(x_peer: XPeer, connect: Connect) -> None:
    connector = connect(x_peer.settings())
    with pytest.raises(Rejected, match="only after the user has DMed"):
        connector.send_direct(a_mention("1346889436626259968"), "hi", "k")
    assert x_peer.fake.requests == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_unavailable(x_peer: XPeer, connect: Connect, status: int) -> None:
    x_peer.fake.fail_next(status)
    with pytest.raises(Unavailable, match=str(status)) as raised:
        connect(x_peer.settings()).verify()
    assert not isinstance(raised.value, Unreachable)  # X answered: each reply counts it as an attempt


def test_refused_connection_is_unreachable(connect: Connect) -> None:
    with pytest.raises(Unreachable, match="ConnectionError"):
        connect(x_settings(f"http://127.0.0.1:{free_port()}")).verify()


def test_lost_answer_then_find_reply_finds_the_post_instead_of_reposting(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    fake.post("rina", "@AcmeCare first")
    fake.post("omar", "@AcmeCare second")
    first, second = connect(x_peer.settings()).fetch_mentions("1", 10).mentions
    fake.delay_next(5, method="POST", path="/2/tweets")  # posted, but the answer comes too late

    with pytest.raises(Unavailable, match="Timeout") as raised:
        connect(x_peer.settings(timeout=0.5)).reply(first, "We're on it, Rina.", "k-1")
    assert not isinstance(raised.value, Unreachable)  # X was at work on it: an attempt of the reply's
    restarted = connect(x_peer.settings())  # as after a crash: nothing remembered in memory
    found = restarted.find_reply(first, "k-1")
    not_found = restarted.find_reply(second, "k-2")

    [posted] = fake.brand_posts()
    assert found is not None and found.post_id == posted["id"]
    assert not_found is None
    assert restarted.find_reply(first, "k-1", direct=True) is None  # a reply is not a DM (none are sent on X)
    timeline = [r.query for r in fake.requests if r.path.endswith("/tweets") and r.method == "GET"]
    assert timeline[0]["since_id"] == first.post_id
    vocabulary = VOCABULARIES[VERSIONS[x_peer.version]]
    asked = [*timeline[0][vocabulary.fields].split(","), *timeline[0].get("expansions", "").split(",")]
    assert {"referenced_tweets", "referenced_posts"} & set(asked)  # what tells which post a reply answers


def test_wrong_credentials_fail_auth_without_showing_them(x_peer: XPeer, connect: Connect) -> None:
    settings = x_settings(x_peer.base_url)
    wrong = ConnectorSettings(
        account=settings.account, base_url=settings.base_url, secrets={"bearer_token": "wrong-secret-123"}
    )
    with pytest.raises(AuthFailed) as caught:
        connect(wrong).verify()
    assert "wrong-secret-123" not in str(caught.value)


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_secrets_stay_out_of_logs_reprs_and_errors(
    x_peer: XPeer, connect: Connect, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # tweepy logs every request's headers at DEBUG
    fake = x_peer.fake
    connector = connect(x_peer.settings(auth=auth))
    fake.post("rina", "@AcmeCare hi")
    mention = connector.fetch_mentions("1", 10).mentions[0]
    connector.reply(mention, "Hello!", "k")
    fake.fail_next(403, detail="forbidden for a test")
    with pytest.raises(Rejected) as caught:
        connector.reply(mention, "Hello again!", "k2")

    seen = caplog.text + repr(connector) + str(caught.value)
    assert "Authorization" in caplog.text or auth == "oauth1"  # the log was really captured
    assert not [secret for secret in (*SECRETS, str(BRAND.access_token)) if secret in seen]


def test_usage_counts_what_x_bills(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    connector.attach_ledger(MemoryLedger())
    brand_post = fake.post("AcmeCare", "News")
    fake.post("ana", "@AcmeCare a", quote=brand_post)
    fake.post("bo", "@AcmeCare b")
    [first, second] = connector.fetch_mentions("1", 10).mentions
    connector.reply(first, "Thanks!", "k")
    connector.reply(first, "See acme.com/help", "k2")
    assert connector.find_reply(second, "k3", thorough=True) is None  # the timeline, then the conversation

    usage = connector.usage()
    billed = {kind: count for kind, count in usage.items() if kind != "requests"}
    assert billed == dict(fake.bill)
    assert billed == {"owned_read": 2 + 2, "post_read": 1, "user_read": 1 + 2, "post_created": 1, "post_with_url": 1}
    # verify, mentions, two posts, the timeline, the conversation; on v2.159, one more (in the current
    # vocabulary, refused by Prism) before the connector spoke the server's
    refused = 1 if x_peer.version == "v2.159" else 0
    assert usage["requests"] == len(fake.requests) + refused == 6 + refused


def test_oauth1_signs_the_url_it_really_calls(
    x_peer: XPeer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    # tweepy builds api.twitter.com URLs; the host is swapped before signing, or a server at
    # any other base_url would refuse every OAuth 1.0a signature.
    caplog.set_level(logging.DEBUG, logger="oauthlib")
    connect(x_peer.settings(auth="oauth1")).verify()
    signed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Normalized URI")]
    assert signed == [f"Normalized URI: {x_peer.base_url}/2/users/me"]


def test_an_answer_without_the_expected_data_is_a_bad_response(x_peer: XPeer, connect: Connect) -> None:
    # Straight to the fake, without Prism (which would turn the off-spec answer into a 500).
    x_peer.fake.fail_next(200, path="/2/users/me")
    with pytest.raises(BadResponse, match="without id and username"):
        connect(x_settings(x_peer.fake.base_url)).verify()


def test_configured_user_id_must_match_the_credentials(x_peer: XPeer, connect: Connect) -> None:
    with pytest.raises(AuthFailed, match="not to the configured user_id 42"):
        connect(x_peer.settings(user_id="42")).verify()


# -- construction and pure parts ------------------------------------------------------------------


def test_tier_sets_the_poll_spacing() -> None:
    assert XConnector(x_settings("http://127.0.0.1:9", tier="free")).min_poll_interval == 900
    spaced = XConnector(x_settings("http://127.0.0.1:9", tier="free", limits={"mention_reads_per_15min": 3}))
    assert spaced.min_poll_interval == 300
    assert XConnector(x_settings("http://127.0.0.1:9", tier="pro")).min_poll_interval == 3
    assert XConnector(x_settings("http://127.0.0.1:9")).tier == "basic"
    with pytest.raises(Rejected, match="unknown tier 'gold'"):
        XConnector(x_settings("http://127.0.0.1:9", tier="gold"))


def test_credentials_are_required() -> None:
    with pytest.raises(AuthFailed, match="bearer_token"):
        XConnector(ConnectorSettings(account="a", base_url="http://127.0.0.1:9", secrets={"access_token": "x"}))


def test_platform_describes_the_config() -> None:
    assert PLATFORM.name == "x" and PLATFORM.create is XConnector
    assert PLATFORM.required_secrets[0] == ("bearer_token",)
    assert PLATFORM.options is not None
    assert {f.name for f in dataclasses.fields(PLATFORM.options)} >= {"user_id", "tier", "limits", "prices"}
    assert PLATFORM.max_characters == 280 and PLATFORM.default_base_url == "https://api.twitter.com"


def test_retry_after_reads_the_reset_epoch() -> None:
    assert retry_after({"x-rate-limit-reset": "1000"}, now=970.0) == 30.0
    assert retry_after({"x-rate-limit-reset": "1000"}, now=1005.0) == 1.0  # already past: retry soon
    assert retry_after({}, now=0.0) == 60.0


# -- two vocabularies: asked in the current one, the server's one remembered -------------------------------


def mention_fields(peer: XPeer) -> list[str]:
    """The post-fields parameter of each mentions request that reached the fake."""
    names = {v.fields for v in VOCABULARIES.values()}
    return [next(name for name in names if name in query) for query in mention_requests(peer)]


@pytest.mark.parametrize("remembered", [None, "posts", "tweets"])
def test_the_connector_speaks_the_servers_vocabulary_and_remembers_it(
    x_peer: XPeer, connect: Connect, remembered: str | None
) -> None:
    server = VOCABULARIES[VERSIONS[x_peer.version]]
    ledger = MemoryLedger({"version": 1, "vocabulary": remembered} if remembered else {})
    x_peer.fake.post("rina", "@AcmeCare where is my order?")
    first = connect(x_peer.settings())
    first.attach_ledger(ledger)

    [mention] = first.fetch_mentions("1", 10).mentions
    again = first.fetch_mentions("1", 10).mentions
    restarted = connect(x_peer.settings())  # a later process of the same account
    restarted.attach_ledger(ledger)
    later = restarted.fetch_mentions("1", 10).mentions

    assert mention.mentions_brand and mention.in_reply_to_id is None and mention.author.handle == "rina"
    assert [m.post_id for m in again] == [m.post_id for m in later] == [mention.post_id]
    assert mention_fields(x_peer) == [server.fields] * 3  # Prism refused any other before the fake saw it
    assert ledger.state["vocabulary"] == server.name
    probes = 0 if remembered == server.name or (remembered is None and server.name == "posts") else 1
    assert restarted.usage()["requests"] == len(x_peer.fake.requests) + probes  # one probe at most, once


def test_a_server_that_drops_the_names_it_does_not_know_is_asked_again_in_its_own(
    x_fake_server: FakeX, connect: Connect
) -> None:
    """Straight to the fake (Prism would refuse the names first): a server that ignores unknown fields
    answers with bare posts, in which nothing looks addressed; the connector notices and asks again."""
    fake = x_fake_server
    fake.reset()
    try:
        fake.drops_unknown = True
        question = fake.post("rina", "@AcmeCare where is my order?")
        connector = connect(x_settings(fake.base_url))
        [mention] = connector.fetch_mentions("1", 10).mentions
        assert (mention.post_id, mention.mentions_brand, mention.author.handle) == (question, True, "rina")
        asked = [r.query for r in fake.requests if r.path.endswith("/mentions")]
        fields = [name for query in asked for name in query if name in ("tweet.fields", "post.fields")]
        assert fields == ["post.fields"] if fake.vocabulary.name == "posts" else ["post.fields", "tweet.fields"]
    finally:
        fake.reset()


def test_ids_are_read_as_strings() -> None:
    body = {
        "data": [
            {
                "id": "1346889436626259968",
                "text": "@AcmeCare hi",
                "author_id": "u-7f3a",  # v2.167 types ids as plain strings: nothing assumes digits
                "conversation_id": "1346889436626259968",
                "entities": {"mentions": [{"start": 0, "end": 9, "username": "AcmeCare", "id": "brand-1"}]},
            }
        ],
        "includes": {"users": [{"id": "u-7f3a", "username": "rina", "name": "Rina"}]},
    }
    [mention] = mentions_from(body, brand_id="brand-1", brand_username="AcmeCare")
    assert (mention.author.id, mention.author.handle, mention.mentions_brand) == ("u-7f3a", "rina", True)


# -- the plan: windows and caps kept across processes, lookups budgeted ------------------------------------


def test_a_second_process_keeps_within_the_free_plan(x_peer: XPeer, connect: Connect) -> None:
    """Two `run --once` a few seconds apart: the second asks X nothing it would refuse."""
    ledger = MemoryLedger()
    first = connect(x_peer.settings(tier="free", vocabulary=VERSIONS[x_peer.version]))
    first.attach_ledger(ledger)
    first.verify()
    first.fetch_mentions(None, 10)
    seen = len(x_peer.fake.requests)

    second = connect(x_peer.settings(tier="free", vocabulary=VERSIONS[x_peer.version]))
    second.attach_ledger(ledger)
    assert second.verify().handle == "AcmeCare"  # remembered: users/me allows 25 calls a day on free
    with pytest.raises(RateLimited, match="allows 1 mentions request") as caught:
        second.fetch_mentions(None, 10)

    assert len(x_peer.fake.requests) == seen == 2  # users/me and one mentions read, by the first only
    assert 890 <= caught.value.retry_after <= 900


def test_a_lookup_reads_no_more_of_its_own_posts_than_the_plan_allows(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings(tier="free", vocabulary=VERSIONS[x_peer.version]))
    connector.attach_ledger(MemoryLedger())
    mention = a_mention(fake.post("rina", "@AcmeCare hi"))
    for n in range(12):
        fake.post("AcmeCare", f"news {n}")

    assert connector.find_reply(mention, "k") is None
    [lookup] = [r.query for r in fake.requests if r.path.endswith("/tweets")]
    assert lookup["max_results"] == "5" and "pagination_token" not in lookup
    assert connector.usage()["owned_read"] == fake.bill["owned_read"] == 5


def test_a_reply_lagging_behind_the_timeline_is_found_in_its_conversation(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    connector = connect(x_peer.settings())
    [mention] = connector.fetch_mentions("1", 10).mentions if fake.post("rina", "@AcmeCare hi") else []
    fake.lag_lookups(2)  # what the brand posts now stays out of the next two lookups
    fake.delay_next(3, method="POST", path="/2/tweets")
    with pytest.raises(Unavailable):
        connect(x_peer.settings(timeout=0.5)).reply(mention, "Hello Rina!", "k")
    restarted = connect(x_peer.settings())

    assert restarted.find_reply(mention, "k") is None  # lookup 1: the timeline lags
    found = restarted.find_reply(mention, "k", thorough=True)  # lookup 2 lags too; the conversation does not

    [posted] = fake.brand_posts()
    assert found is not None and found.post_id == posted["id"]
    assert [r.path for r in fake.requests][-2:] == [f"/2/users/{BRAND.id}/tweets", "/2/tweets/search/recent"]


def test_xs_usage_cap_pauses_until_the_month_ends_and_is_remembered(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    fake.set_usage_cap("reads", 1)
    fake.post("rina", "@AcmeCare hi")
    fake.post("omar", "@AcmeCare hello")
    ledger = MemoryLedger()
    connector = connect(x_peer.settings(tier="pro", vocabulary=VERSIONS[x_peer.version]))
    connector.attach_ledger(ledger)
    connector.fetch_mentions("1", 10)  # two posts read: the cap (1) is passed

    with pytest.raises(UsageCapped) as caught:
        connector.fetch_mentions("1", 10)
    restarted = connect(x_peer.settings(tier="pro", vocabulary=VERSIONS[x_peer.version]))
    restarted.attach_ledger(ledger)
    asked = len(fake.requests)
    with pytest.raises(UsageCapped):
        restarted.fetch_mentions("1", 10)

    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert caught.value.period == "Monthly"
    assert abs(caught.value.retry_after - (next_month - now).total_seconds()) < 60
    assert len(fake.requests) == asked  # the restarted process did not ask X again


def test_carebot_stops_at_the_plans_monthly_cap_before_x_refuses(x_peer: XPeer, connect: Connect) -> None:
    fake = x_peer.fake
    for n in range(3):
        fake.post(f"user{n}", f"@AcmeCare hi {n}")
    vocabulary = VERSIONS[x_peer.version]
    connector = connect(x_peer.settings(tier="free", vocabulary=vocabulary, limits={"post_reads_per_month": 3}))
    connector.attach_ledger(MemoryLedger())
    connector.verify()
    connector.fetch_mentions("1", 10)
    seen = len(fake.requests)

    with pytest.raises(UsageCapped, match="3 post reads a month"):
        connector.find_reply(a_mention(fake.post("rina", "@AcmeCare more")), "k")
    assert len(fake.requests) == seen


def test_the_example_x_account_with_every_key_is_a_valid_config(tmp_path: Path) -> None:
    """config.example.yaml's X account, its commented keys too, read as a user who uncomments it would."""
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  # - name: acme-x")
    block = [line.replace("  # ", "  ", 1) for line in lines[start:]]
    block = [re.sub(r"^(\s*)# (\s*)(?=[a-z_]+:)", r"\1\2", line) for line in block]
    text = "\n".join([*lines[:start], *block]) + "\n"
    (tmp_path / "carebot.yaml").write_text(text, encoding="utf-8")
    names = ("MASTODON_TOKEN", "X_USER_TOKEN", "X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN")
    env = {name: "t0ken-for-a-test" for name in (*names, "X_ACCESS_TOKEN_SECRET")}
    account = load_config(tmp_path / "carebot.yaml", env).account("acme-x")

    assert account.options["tier"] == "basic" and account.options["vocabulary"] == "auto"
    assert account.options["limits"]["post_reads_per_month"] == 15000
    assert account.options["prices"] == PAY_PER_USE_PRICES | {"monthly_fee": 200}
    plan = XConnector(app_settings(account)).plan
    assert (plan.tier.posts_per_month, plan.tier.monthly_fee, plan.tier.lookup_posts) == (3000, 200.0, 100)


@pytest.mark.parametrize(
    ("moment", "billing_day", "start", "resets"),
    [
        (datetime(2031, 3, 30, 12, tzinfo=UTC), 1, datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 4, 1, tzinfo=UTC)),
        (datetime(2031, 3, 10, tzinfo=UTC), 15, datetime(2031, 2, 15, tzinfo=UTC), datetime(2031, 3, 15, tzinfo=UTC)),
        (datetime(2031, 12, 31, tzinfo=UTC), 1, datetime(2031, 12, 1, tzinfo=UTC), datetime(2032, 1, 1, tzinfo=UTC)),
        (datetime(2031, 1, 3, tzinfo=UTC), 28, datetime(2030, 12, 28, tzinfo=UTC), datetime(2031, 1, 28, tzinfo=UTC)),
    ],
)
def test_a_plans_month_starts_on_its_billing_day(
    moment: datetime, billing_day: int, start: datetime, resets: datetime
) -> None:
    assert month_start(moment, billing_day) == start and next_month(start) == resets


def test_the_plans_windows_refuse_the_request_the_plan_would_refuse() -> None:
    budget = XBudget(plan_for({"tier": "free"}), "acme-x")
    with use_clock(lambda: datetime(2031, 3, 30, 12, tzinfo=UTC)):
        for _ in range(17):  # posts per 24 hours on free
            budget.check("post", posts=True)
            budget.note_request("post")
        with pytest.raises(RateLimited, match="17 post request"):
            budget.check("post", posts=True)
    with use_clock(lambda: datetime(2031, 3, 31, 12, 0, 1, tzinfo=UTC)):
        budget.check("post", posts=True)  # a day later: allowed again
