"""The Mastodon connector against mastodon-mock over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon_mock.testing import MockServer

from connectors import get_platform
from connectors.base import (
    AuthFailed,
    Author,
    BadResponse,
    ConnectorError,
    Mention,
    MentionPage,
    RateBudget,
    RateLimited,
    Rejected,
    Unavailable,
    Unreachable,
)
from connectors.mastodon import MastodonConnector, _to_mention
from tests.peers.mastodon import (
    CUSTOMERS,
    add_fault,
    client,
    free_port,
    mastodon_subprocess,
    post_as,
    settings_for,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"


@pytest.fixture
def brand(mastodon_server: MockServer) -> Iterator[MastodonConnector]:
    connector = MastodonConnector(settings_for(mastodon_server.base_url, timeout=5.0))
    yield connector
    connector.close()


def mention_from(
    connector: MastodonConnector, base_url: str, text: str, author: str = "alice", **kwargs: Any
) -> Mention:
    """Post a mention of the brand as `author` and return it as the connector reads it."""
    cursor = connector.fetch_mentions(None, 40).next_cursor
    post_as(base_url, author, text, **kwargs)
    page = connector.fetch_mentions(cursor, 40)
    assert len(page.mentions) == 1
    return page.mentions[0]


def server_status(base_url: str, status_id: str, as_user: str = "brand") -> Any:
    with client(base_url, as_user) as api:
        return api.status(status_id)


# --- identity ---------------------------------------------------------------------


def test_platform_entry_builds_this_connector(mastodon_server: MockServer) -> None:
    platform = get_platform("mastodon")
    assert platform.secret_keys == ("access_token",)
    connector = platform.create(settings_for(mastodon_server.base_url))
    try:
        assert connector.verify().handle == "brand"
    finally:
        connector.close()


def test_verify_returns_who_we_are_and_the_instance_limit(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    info = brand.verify()
    with client(mastodon_server.base_url, "brand") as api:
        expected_id = str(api.account_verify_credentials()["id"])
    assert (info.id, info.handle, info.max_characters) == (expected_id, "brand", 500)


# --- reading mentions -----------------------------------------------------------


def test_first_poll_starts_from_now_and_ignores_history(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    old = post_as(mastodon_server.base_url, "alice", "@brand an old question")
    first = brand.fetch_mentions(None, 40)
    assert first.mentions == []
    assert first.next_cursor is not None
    new = post_as(mastodon_server.base_url, "boris", "@brand a new question")
    page = brand.fetch_mentions(first.next_cursor, 40)
    assert [m.post_id for m in page.mentions] == [str(new["id"])]
    assert str(old["id"]) not in {m.post_id for m in page.mentions}
    assert page.next_cursor == page.mentions[-1].cursor
    assert page.has_more is False


def test_first_poll_of_a_quiet_account_still_catches_the_next_mention(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    first = brand.fetch_mentions(None, 40)
    assert first.mentions == []
    post_as(mastodon_server.base_url, "dewi", "@brand halo, bagaimana cara menghubungi dukungan?")
    page = brand.fetch_mentions(first.next_cursor, 40)
    assert [m.author.handle for m in page.mentions] == ["dewi"]


def test_nothing_new_keeps_the_cursor(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    post_as(mastodon_server.base_url, "alice", "@brand hi")
    cursor = brand.fetch_mentions(None, 40).next_cursor
    assert cursor is not None
    assert brand.fetch_mentions(cursor, 40) == MentionPage(mentions=[], next_cursor=None, has_more=False)


def test_a_burst_is_read_page_by_page_without_skips_or_repeats(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    cursor = brand.fetch_mentions(None, 40).next_cursor
    posted: list[str] = []
    seen: list[Mention] = []
    pages = 0
    with ExitStack() as stack:
        apis = [stack.enter_context(client(mastodon_server.base_url, name)) for name in CUSTOMERS]
        for i in range(120):
            posted.append(str(apis[i % 4].status_post(f"@brand question number {i}")["id"]))
        while True:
            page = brand.fetch_mentions(cursor, 40)
            pages += 1
            assert len(page.mentions) <= 40
            seen.extend(page.mentions)
            cursor = page.next_cursor or cursor
            if pages == 1:
                # More arrive while we are still paging: they must not be skipped either.
                posted.extend(str(apis[j % 4].status_post(f"@brand late {j}")["id"]) for j in range(3))
            if not page.has_more:
                break
    assert [m.post_id for m in seen] == posted
    assert pages >= 4
    assert [m.text for m in seen[:2]] == ["@brand question number 0", "@brand question number 1"]


def test_a_page_larger_than_the_server_serves_still_reports_more(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    cursor = brand.fetch_mentions(None, 80).next_cursor
    with client(mastodon_server.base_url, "layla") as api:
        posted = [str(api.status_post(f"@brand سؤال {i}")["id"]) for i in range(45)]
    first = brand.fetch_mentions(cursor, 80)  # the mock caps pages at 40, as a server may
    assert len(first.mentions) == 40
    assert first.has_more is True
    second = brand.fetch_mentions(first.next_cursor, 80)
    assert second.has_more is False
    assert [m.post_id for m in first.mentions + second.mentions] == posted


def test_a_deleted_status_is_skipped_but_the_cursor_moves_past_it(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    cursor = brand.fetch_mentions(None, 40).next_cursor
    kept = post_as(mastodon_server.base_url, "alice", "@brand my order is late")
    with client(mastodon_server.base_url, "boris") as api:
        gone = api.status_post("@brand oops, wrong account")
        api.status_delete(gone["id"])
    page = brand.fetch_mentions(cursor, 40)
    assert [m.post_id for m in page.mentions] == [str(kept["id"])]
    assert page.next_cursor is not None and int(page.next_cursor) > int(page.mentions[0].cursor)
    assert brand.fetch_mentions(page.next_cursor, 40).next_cursor is None


def test_other_notifications_are_not_mentions(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    cursor = brand.fetch_mentions(None, 40).next_cursor
    own = post_as(mastodon_server.base_url, "brand", "Our spring sale starts today")
    with client(mastodon_server.base_url, "alice") as api:
        api.status_favourite(own["id"])
        api.account_follow(brand.verify().id)
        api.status_reblog(own["id"])
        asked = api.status_post("@brand is the sale on the app too?")
    page = brand.fetch_mentions(cursor, 40)
    assert [m.post_id for m in page.mentions] == [str(asked["id"])]


def test_a_mention_carries_what_the_core_needs(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    own = post_as(mastodon_server.base_url, "brand", "Maintenance tonight at 22:00")
    before = datetime.now(UTC) - timedelta(minutes=5)
    mention = mention_from(
        brand,
        mastodon_server.base_url,
        "@brand Почему так дорого? &  <script>",
        author="boris",
        in_reply_to_id=own["id"],
        visibility="unlisted",
        language="ru",
    )
    assert mention.platform == "mastodon"
    assert mention.author.handle == "boris"
    assert mention.author.display_name == "Борис"
    assert mention.author.is_bot is False
    assert mention.text.startswith("@brand Почему так дорого?")
    assert mention.created_at.tzinfo is not None and mention.created_at > before
    assert mention.url and mention.post_id in mention.url
    assert mention.in_reply_to_id == str(own["id"])
    assert mention.in_reply_to_author_id == brand.verify().id
    assert (mention.visibility, mention.language, mention.mentions_brand) == ("unlisted", "ru", True)


def test_recorded_remote_mention_with_content_warning() -> None:
    payload = json.loads((FIXTURES / "notification_mention_remote.json").read_text(encoding="utf-8"))
    mention = _to_mention(payload, own_id="110000000000000001")
    assert mention is not None
    assert mention.cursor == "3141592"
    assert mention.post_id == "114157890123456789"
    assert mention.author.handle == "boris@mastodon.social"
    assert mention.text == (
        "жалоба на доставку\n\n@brand заказ не пришёл уже неделю & поддержка молчит.\nЧто делать?\n\nСпасибо"
    )
    assert mention.created_at == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert (mention.in_reply_to_id, mention.in_reply_to_author_id) == (
        "114157880000000001",
        "110000000000000001",
    )
    assert (mention.visibility, mention.language, mention.mentions_brand) == ("unlisted", "ru", True)
    assert mention.url == "https://mastodon.social/@boris/114157890123456789"


def test_recorded_thread_reply_that_does_not_address_the_brand() -> None:
    payload = json.loads((FIXTURES / "notification_mention_thread_direct.json").read_text(encoding="utf-8"))
    mention = _to_mention(payload, own_id="110000000000000001")
    assert mention is not None
    assert mention.mentions_brand is False
    assert mention.visibility == "direct"
    assert mention.url == "https://shop.example/users/dewi/statuses/114157990000000002"  # no url: the uri
    assert mention.text == "@friend setuju, harganya mahal sekali"


@pytest.mark.parametrize("name", ["notification_deleted_status.json", "notification_favourite.json"])
def test_recorded_notifications_that_are_not_mentions(name: str) -> None:
    payload = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert _to_mention(payload, own_id="110000000000000001") is None


# --- answering -------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private", "direct"])
def test_reply_lands_in_the_thread_no_more_public_than_the_mention(
    brand: MastodonConnector, mastodon_server: MockServer, visibility: str
) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand where is my parcel?", visibility=visibility)
    posted = brand.reply(mention, "Sorry about the wait, we are checking it now.", "reply-1")
    status = server_status(mastodon_server.base_url, posted.post_id, as_user="alice")
    assert str(status["in_reply_to_id"]) == mention.post_id
    assert status["visibility"] == visibility
    assert [m["acct"] for m in status["mentions"]] == ["alice"]  # so alice is notified and can see it
    assert "Sorry about the wait" in status["content"]


def test_reply_does_not_name_the_author_twice(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand hi")
    posted = brand.reply(mention, "@alice hello, how can we help?", "reply-2")
    status = server_status(mastodon_server.base_url, posted.post_id)
    assert status["content"].count("@alice") == 1


def test_same_idempotency_key_posts_once(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand my card was charged twice")
    first = brand.reply(mention, "We are sorry, please send us the details by DM.", "once-only")
    again = brand.reply(mention, "We are sorry, please send us the details by DM.", "once-only")
    assert again.post_id == first.post_id
    with client(mastodon_server.base_url, "alice") as api:
        thread = api.status_context(mention.post_id)["descendants"]
    replies = [s for s in thread if s["account"]["acct"] == "brand"]
    assert len(replies) == 1


def test_direct_message_reaches_only_the_author(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand I want a refund", author="layla")
    posted = brand.send_direct(mention, "Please send us your order number here.", "dm-1")
    status = server_status(mastodon_server.base_url, posted.post_id, as_user="layla")
    assert status["visibility"] == "direct"
    assert status["content"].startswith("<p>@layla Please send us your order number here.")
    assert [m["acct"] for m in status["mentions"]] == ["layla"]


def test_find_reply_before_and_after_replying(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand is the shop open on Sunday?")
    post_as(mastodon_server.base_url, "boris", "@alice I think it is", in_reply_to_id=mention.post_id)
    assert brand.find_reply(mention, "k") is None
    posted = brand.reply(mention, "Yes, from 10 to 18.", "k")
    found = brand.find_reply(mention, "k")
    assert found is not None and found.post_id == posted.post_id


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_find_reply_tells_the_public_reply_from_the_private_follow_up(
    brand: MastodonConnector, mastodon_server: MockServer, visibility: str
) -> None:
    # A follow-up sent more than an hour ago (its idempotency key forgotten) must be found, not re-sent.
    mention = mention_from(brand, mastodon_server.base_url, "@brand my card was charged twice", visibility=visibility)
    assert brand.find_reply(mention, "dm", direct=True) is None
    public = brand.reply(mention, "Sorry about that, we will look into it.", "pub")
    assert brand.find_reply(mention, "dm", direct=True) is None
    private = brand.send_direct(mention, "Please send us the last four digits of the card here.", "dm")
    found_public = brand.find_reply(mention, "pub")
    found_private = brand.find_reply(mention, "dm", direct=True)
    assert found_public is not None and found_public.post_id == public.post_id
    assert found_private is not None and found_private.post_id == private.post_id
    status = server_status(mastodon_server.base_url, private.post_id, as_user="alice")
    assert (status["visibility"], status["in_reply_to_id"]) == ("direct", mention.post_id)


def test_find_reply_on_a_deleted_mention_is_none(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand never mind")
    with client(mastodon_server.base_url, "alice") as api:
        api.status_delete(mention.post_id)
    assert brand.find_reply(mention, "k") is None


def test_text_length_counts_a_url_as_23(brand: MastodonConnector) -> None:
    url = "https://help.shop.example/articles/how-to-reach-support-in-every-country"
    assert brand.text_length(f"See {url}") == 4 + 23


# --- failures ---------------------------------------------------------------------


def test_rate_limit_with_epoch_reset(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    reset = int(time.time()) + 5
    add_fault(
        mastodon_server.base_url,
        path="/api/v1/notifications",
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": str(reset), "Retry-After": "5"}},
    )
    with pytest.raises(RateLimited) as caught:
        brand.fetch_mentions("0", 40)
    assert 1 <= caught.value.retry_after <= 6
    budget = brand.budget()
    assert (budget.remaining, budget.limit) == (0, 300)
    assert budget.reset_at is not None
    assert abs((budget.reset_at - datetime.now(UTC)).total_seconds() - 5) < 2


def test_rate_limit_with_iso_reset_as_real_mastodon_sends(
    brand: MastodonConnector, mastodon_server: MockServer
) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand hello")
    reset_at = datetime.now(UTC) + timedelta(seconds=30)
    reset = reset_at.isoformat(timespec="microseconds").replace("+00:00", "Z")  # as Rails writes it
    add_fault(
        mastodon_server.base_url,
        path="/api/v1/statuses",
        methods=["POST"],
        effect={"type": "ratelimit", "headers": {"X-RateLimit-Reset": reset, "Retry-After": "30"}},
    )
    with pytest.raises(RateLimited) as caught:
        brand.reply(mention, "Hello!", "rl")
    # The reset, 30 s away (not the 60 s default). The server's Date header has whole seconds and, on a
    # busy machine, can lag ours by more than the 2 s we take for rounding: then its clock is trusted.
    assert 25 <= caught.value.retry_after <= 34


def test_budget_is_unknown_until_the_server_reports_one(brand: MastodonConnector) -> None:
    brand.verify()
    assert brand.budget() == RateBudget()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unavailable(brand: MastodonConnector, mastodon_server: MockServer, status: int) -> None:
    add_fault(mastodon_server.base_url, path="/api/v1/notifications", effect={"type": "status", "status": status})
    with pytest.raises(Unavailable) as raised:
        brand.fetch_mentions("0", 40)
    assert not isinstance(raised.value, Unreachable)  # the server answered: each reply counts it as an attempt
    assert brand.fetch_mentions("0", 40).mentions == []  # the fault was one-off: next poll works


def test_a_slow_server_is_unavailable(mastodon_server: MockServer) -> None:
    connector = MastodonConnector(settings_for(mastodon_server.base_url, timeout=0.5))
    try:
        connector.verify()
        add_fault(
            mastodon_server.base_url,
            path="/api/v1/notifications",
            effect={"type": "latency", "delay_ms": 1500},
        )
        with pytest.raises(Unavailable) as raised:
            connector.fetch_mentions("0", 40)
        assert not isinstance(raised.value, Unreachable)  # it may be at work on the request
    finally:
        connector.close()


def test_nobody_listening_is_unreachable() -> None:
    connector = MastodonConnector(settings_for(f"http://127.0.0.1:{free_port()}", timeout=1.0))
    try:
        with pytest.raises(Unreachable, match="Connection refused"):
            connector.verify()
    finally:
        connector.close()


def test_a_malformed_body_is_a_bad_response(brand: MastodonConnector, mastodon_server: MockServer) -> None:
    brand.verify()
    add_fault(mastodon_server.base_url, path="/api/v1/notifications", effect={"type": "malformed"})
    with pytest.raises(BadResponse):
        brand.fetch_mentions("0", 40)


@pytest.mark.parametrize("body", [{"error": "not a list"}, [{"type": "mention"}], ["not an object"]])
def test_an_unexpected_shape_is_a_bad_response(
    brand: MastodonConnector, mastodon_server: MockServer, body: Any
) -> None:
    brand.verify()
    add_fault(
        mastodon_server.base_url,
        path="/api/v1/notifications",
        effect={"type": "status", "status": 200, "body": body},
    )
    with pytest.raises(BadResponse):
        brand.fetch_mentions("0", 40)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"id": "9", "content": "<p>no account</p>", "created_at": "2026-01-01T00:00:00Z"}, "status.account"),
        ({"id": "9", "account": {"id": "1", "acct": "a"}}, "created_at is missing"),
        ({"id": "9", "account": {"id": "1", "acct": "a"}, "created_at": "yesterday"}, "created_at"),
        ({"id": {"x": 1}, "account": {"id": "1"}, "created_at": "2026-01-01T00:00:00Z"}, "status id"),
    ],
    ids=["no-account", "no-date", "bad-date", "bad-id"],
)
def test_a_notification_of_the_wrong_shape_is_set_aside_and_the_rest_of_the_page_read(
    brand: MastodonConnector, mastodon_server: MockServer, status: dict[str, Any], reason: str
) -> None:
    brand.verify()
    good = {
        "id": "7",
        "type": "mention",
        "status": {
            "id": "11",
            "content": "<p>@brand hello</p>",
            "created_at": "2026-01-01T00:00:00Z",
            "account": {"id": "2", "acct": "alice"},
        },
    }
    add_fault(
        mastodon_server.base_url,
        path="/api/v1/notifications",
        effect={"type": "status", "status": 200, "body": [{"id": "5", "type": "mention", "status": status}, good]},
    )
    page = brand.fetch_mentions("0", 40)
    assert [m.post_id for m in page.mentions] == ["11"]
    (unreadable,) = page.unreadable
    assert reason in unreadable.reason and unreadable.cursor == "5"
    assert page.next_cursor == "7"  # the cursor moves past it


@pytest.mark.parametrize(("status", "error"), [(422, Rejected), (404, Rejected), (403, AuthFailed)])
def test_a_refused_post(
    brand: MastodonConnector, mastodon_server: MockServer, status: int, error: type[ConnectorError]
) -> None:
    mention = mention_from(brand, mastodon_server.base_url, "@brand hi")
    add_fault(
        mastodon_server.base_url,
        path="/api/v1/statuses",
        methods=["POST"],
        effect={"type": "status", "status": status, "body": {"error": "Validation failed: Text is too long"}},
    )
    with pytest.raises(error) as caught:
        brand.reply(mention, "Hello!", "refused")
    assert type(caught.value) is error


def test_a_wrong_token_fails_auth_without_leaking_it(mastodon_server: MockServer) -> None:
    secret = "s3cret-token-that-must-not-leak"
    settings = settings_for(mastodon_server.base_url)
    connector = MastodonConnector(replace(settings, secrets={"access_token": secret}))
    try:
        with pytest.raises(AuthFailed) as caught:
            connector.verify()
        shown = [str(caught.value), repr(caught.value), repr(connector), str(caught.value.__cause__)]
        assert all(secret not in text for text in shown)
    finally:
        connector.close()


# --- the subprocess peer that daemon and demo tests use ---------------------------


def test_subprocess_peer_serves_the_seed_and_stops(tmp_path: Path) -> None:
    with mastodon_subprocess(tmp_path) as running:
        connector = MastodonConnector(settings_for(running.base_url))
        try:
            cursor = connector.fetch_mentions(None, 40).next_cursor
            post_as(running.base_url, "alice", "@brand are you there?")
            assert [m.text for m in connector.fetch_mentions(cursor, 40).mentions] == ["@brand are you there?"]
        finally:
            connector.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{running.base_url}/health", timeout=1)
    assert (tmp_path / "mock.toml").is_file()


# --- every answer is read inside the edge -------------------------------------------------------------

WRONG_SHAPES: list[Any] = [
    None,
    [],
    {},
    "text",
    5,
    [None],
    {"id": None, "acct": None},
    {"ancestors": [], "descendants": None},
    {"ancestors": [], "descendants": [None]},
    {"ancestors": [], "descendants": [{"id": "1", "account": None, "in_reply_to_id": "9"}]},
    [{"id": {"nested": 1}}],
]
CALLS: dict[str, tuple[str, str, Any]] = {
    "verify": ("GET", "/api/v1/accounts/verify_credentials", lambda c, m: c.verify()),
    "fetch": ("GET", "/api/v1/notifications", lambda c, m: c.fetch_mentions("0", 40)),
    "find": ("GET", "/api/v1/statuses/*/context", lambda c, m: c.find_reply(m, "key")),
    "find-by-words": ("GET", "/api/v1/statuses/*/context", lambda c, m: c.find_reply(m, "key", text="hi")),
    "reply": ("POST", "/api/v1/statuses", lambda c, m: c.reply(m, "hello", "key-1")),
    "direct": ("POST", "/api/v1/statuses", lambda c, m: c.send_direct(m, "hello", "key-2")),
    "ignored": ("GET", "/api/v1/blocks", lambda c, m: c.ignored_author_ids()),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_no_answer_of_any_shape_makes_a_connector_raise_anything_but_a_connector_error(
    mastodon_server: MockServer, call: str
) -> None:
    """Before: `find_reply` read the context outside the edge, and a wrong shape escaped as TypeError."""
    method, path, act = CALLS[call]
    base = mastodon_server.base_url
    mention = Mention(
        platform="mastodon",
        post_id=str(post_as(base, "alice", "@brand hello")["id"]),
        cursor="1",
        author=Author(id="2", handle="alice"),
        text="@brand hello",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for body in WRONG_SHAPES:
        connector = MastodonConnector(settings_for(base, timeout=5.0))
        try:
            if call != "verify":
                connector.verify()
            add_fault(base, path=path, methods=[method], effect={"type": "status", "status": 200, "body": body})
            with suppress(ConnectorError):
                act(connector, mention)
        finally:
            connector.close()
