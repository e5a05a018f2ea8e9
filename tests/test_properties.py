"""Bad input never crashes and never leaks: arbitrary text through the classifier, router and renderers
(hypothesis), arbitrary JSON through the connectors' parsers, and a table of nasty posts end to end."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mastodon_mock.testing import MockServer

from bot.classifier import Classifier, find_personal_data, mask_personal_data
from bot.config import Brand, load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.decide.render import render
from bot.decide.router import Context, decide
from bot.models import LANGUAGES, SITUATIONS, Action
from bot.run.app import App
from bot.run.daemon import run_once
from connectors.base import Author, BadResponse, Mention
from connectors.mastodon import _SHAPE_ERRORS, _to_mention
from connectors.mastodon_html import html_to_text
from connectors.mastodon_limits import text_length as mastodon_length
from connectors.x_posts import mentions_from
from connectors.x_text import text_length as x_length
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import add_fault, post_as
from tests.test_faults_mastodon import brand_replies

BRAND = Brand(
    name="Acme", support_email="help@acme.example", support_url="https://acme.example/help", handles=("brand",)
)
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&(?:lt|gt|amp|quot|#\d+);|\]\(|\*\*|javascript:", re.IGNORECASE)
SAFE_HANDLE = re.compile(r"@[A-Za-z0-9_.@-]+")
# Text that exercises the dark corners: markup, zero-width and direction marks, emoji, NUL, scripts.
NASTY = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<b>",
        "&lt;img src=x onerror=alert(1)&gt;",
        "[click](javascript:alert(1))",
        "\u200b\u200c\u200d\u2060\ufeff",
        "\u202e\u2066\u2067\u200f",
        "😡🤬👍🏽👨‍👩‍👧",
        "\x00",
        "\r\n\t",
        "@brand",
        "stop",
        "http://evil.example/x",
        "Позвоните +7 900 123-45-67",
        "رقم الطلب 123456",
        "pesanan 98765",
        "4111 1111 1111 1111",
        "alice@example.org",
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=60), NASTY), max_size=12).map("".join)
HANDLE = st.one_of(st.text(max_size=40), st.from_regex(r"[A-Za-z0-9_]{1,15}(@[a-z.]{1,20})?", fullmatch=True), NASTY)
MARKER = "QZXJWV"  # never in a template: if a reply holds it, the post's words leaked into the reply


@pytest.fixture(scope="module")
def playbooks() -> Playbooks:
    return load_playbooks(None)


@pytest.fixture(scope="module")
def classifier(playbooks: Playbooks) -> Classifier:
    return Classifier.load(vocabulary(playbooks))


def context(platform: str, **changes: Any) -> Context:
    limit, length = (500, mastodon_length) if platform == "mastodon" else (280, x_length)
    values: dict[str, Any] = {
        "brand": BRAND,
        "platform": platform,
        "max_characters": limit,
        "text_length": length,
        "allow_direct": platform == "mastodon",
        "prefer_links": platform == "mastodon",
    }
    return Context(**(values | changes))


def mention(text: str, handle: str, platform: str = "mastodon") -> Mention:
    return Mention(
        platform=platform,
        post_id="1234567890",
        cursor="1",
        author=Author(id="42", handle=handle),
        text=text,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(text=TEXT, lang=st.sampled_from(LANGUAGES))
def test_the_classifier_takes_any_text(classifier: Classifier, text: str, lang: str) -> None:
    result = classifier.classify(text, default_lang=lang)
    assert result.situation in SITUATIONS and result.lang in LANGUAGES
    assert 0.0 <= result.confidence <= 1.0
    spans = result.personal_data
    assert all(0 <= p.start < p.end <= len(text) for p in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))  # ordered, no overlap


@FAST
@given(text=TEXT, handle=HANDLE, platform=st.sampled_from(["mastodon", "x"]), recent=st.integers(0, 5))
def test_every_decision_fits_the_platform_and_injects_nothing(
    classifier: Classifier, playbooks: Playbooks, text: str, handle: str, platform: str, recent: int
) -> None:
    ctx = context(platform, recent_replies_to_author=recent)
    post = f"{text} {MARKER} {text}"
    decision = decide(mention(post, handle, platform), classifier.classify(post), playbooks, ctx)
    assert decision.situation in SITUATIONS
    for reply in (decision.reply_text, decision.direct_text):
        if reply is None:
            continue
        assert decision.action is Action.REPLY
        assert ctx.text_length(reply) <= ctx.max_characters
        assert MARKER not in reply
        assert not MARKUP.search(reply), reply
        assert "\x00" not in reply and "\u202e" not in reply and "\u200b" not in reply
        address = reply.split(" ", 1)[0]
        assert SAFE_HANDLE.fullmatch(address), address
    if decision.reply_text is None:
        assert decision.action is not Action.REPLY or decision.needs_approval


@FAST
@given(handle=HANDLE, lang=st.sampled_from(LANGUAGES), links=st.booleans())
def test_every_template_renders_safely_for_any_handle(
    playbooks: Playbooks, handle: str, lang: str, links: bool
) -> None:
    for playbook in playbooks.by_situation.values():
        for by_lang in playbook.templates.values():
            for template in by_lang.get(lang, ()):
                try:
                    text = render(template, BRAND, handle, lang, links)
                except ValueError:
                    continue  # no usable handle, or a link variant where links are unwelcome: a person writes
                assert SAFE_HANDLE.fullmatch(text.split(" ", 1)[0])
                assert not MARKUP.search(text), text
                assert "{" not in text and "}" not in text


@FAST
@given(text=TEXT)
def test_masking_takes_any_text_and_hides_what_it_finds(text: str) -> None:
    masked = mask_personal_data(text)
    for found in find_personal_data(text):
        value = text[found.start : found.end]
        if len(value) >= 6 and text.count(value) == 1:
            assert value not in masked


@FAST
@given(
    html=st.lists(
        st.one_of(
            st.text(max_size=30),
            NASTY,
            st.sampled_from(
                ["<p>", "</p>", "<br>", "<a href='x'>", "</a>", '<span class="invisible">', "&amp;", "&#x200b;"]
            ),
        ),
        max_size=15,
    ).map("".join)
)
def test_mastodon_html_to_text_takes_anything(html: str) -> None:
    assert isinstance(html_to_text(html), str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


def notification_like() -> st.SearchStrategy[Any]:
    account = st.fixed_dictionaries({"id": JSON, "acct": JSON}, optional={"bot": JSON, "display_name": JSON})
    status = st.fixed_dictionaries(
        {"id": JSON, "account": account | JSON, "created_at": JSON},
        optional={"content": JSON, "mentions": JSON, "visibility": JSON, "spoiler_text": JSON},
    )
    return st.fixed_dictionaries(
        {"id": JSON, "type": st.sampled_from(["mention", "favourite", "poll", "quote", "severed_relationships"])},
        optional={"status": status | st.none() | JSON},
    )


@FAST
@given(notification=notification_like())
def test_any_notification_is_a_mention_none_or_a_shape_error(notification: dict[str, Any]) -> None:
    """A shape error becomes BadResponse at the connector's edge; nothing else may escape."""
    try:
        result = _to_mention(notification, own_id="1")
    except _SHAPE_ERRORS:
        return
    assert result is None or isinstance(result, Mention)


@FAST
@given(body=st.dictionaries(st.sampled_from(["data", "includes", "meta", "errors"]), JSON, max_size=4))
def test_any_x_mentions_answer_is_read_or_refused_as_a_bad_response(body: dict[str, Any]) -> None:
    try:
        mentions = mentions_from(body, brand_id="1", brand_username="AcmeCare")
    except BadResponse:
        return
    assert all(isinstance(m, Mention) for m in mentions)


# --- nasty posts end to end -------------------------------------------------------------------------


POSTS = {
    "empty": "@brand",
    "huge": "@brand " + "my order never arrived. " * 20,  # 480 characters: near the instance limit
    "html": "@brand <script>alert('x')</script><b>help</b> my order never arrived &lt;img src=x&gt;",
    "zero-width": "@brand\u200b how\u200d can\u2060 I contact\ufeff support?",
    "rtl": "@brand \u202eكيف اتواصل مع خدمة العملاء؟\u202c",
    "emoji-only": "@brand 😡😡😡🤬",
    "mixed": "@brand привет, how can I contact support? tolong bantu, شكرا",
    "null-byte": "@brand my order\x00 never arrived, where is it?",
    "personal": "@brand my card 4111 1111 1111 1111 was charged twice, call me +1 415 555 0134",
}


@pytest.fixture
def bot(tmp_path: Path, mastodon_server: MockServer, db_url: str, running_bot: StartBot) -> App:
    path = configs.write_config(
        tmp_path,
        db_url=db_url,
        accounts=configs.mastodon_account(mastodon_server.base_url, mode=None, poll_interval=None, timeout=None),
        sections="daemon:\n  max_replies_per_author_hour: 50\n" + configs.SEPARATE_POSTS,
    )
    return running_bot(load_config(path, {"BRAND_TOKEN": "brand_token"}))


def test_nasty_posts_are_read_stored_and_answered_safely(bot: App, mastodon_server: MockServer) -> None:
    base = mastodon_server.base_url
    posted = {name: str(post_as(base, "alice", text)["id"]) for name, text in POSTS.items()}
    # Unknown notification types and a notification whose status was deleted, in the same stream.
    add_fault(
        base,
        effect={
            "type": "status",
            "status": 200,
            "body": [
                {"id": "1", "type": "severed_relationships", "created_at": "2026-01-01T00:00:00Z"},
                {"id": "2", "type": "mention", "status": None, "created_at": "2026-01-01T00:00:00Z"},
            ],
        },
        path="/api/v1/notifications",
        methods=["GET"],
    )
    reports = run_once(bot) + run_once(bot) + run_once(bot)
    assert all(r.error is None for r in reports), [r.error for r in reports]
    stored = {m.mention.post_id: m for m in bot.storage.mentions.all()}
    assert set(posted.values()) <= set(stored), "every post is stored, however odd"
    for replies in brand_replies(base).values():
        for reply in replies:
            content = re.sub(r"</?p>|<br\s*/?>", "", reply["content"])  # the mock's own paragraph markup
            assert "<script" not in content and "<b>" not in content and "&lt;img" not in content
            assert len(re.sub(r"<[^>]+>", "", content)) <= 500
            assert "4111" not in content and "555 0134" not in content
    assert stored[posted["html"]].situation == "complaint"


def test_real_handles_survive_whole() -> None:
    for handle in ("alice", "Dewi_99", "boris@mastodon.social", "a.b-c@x.example"):
        assert render("Hi", BRAND, handle, "en", True) == f"@{handle} Hi"
