from __future__ import annotations

from pathlib import Path

import pytest

from connectors.mastodon_html import html_to_text

FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"

# Recorded-shape Mastodon 4.x status bodies and the text a person reads on screen.
EXPECTED = {
    "mention_hcard.html": "@brand how do I reach your support team?",
    "remote_mentions.html": "@brand @friend look, same problem as yours",
    "long_link_hashtags.html": (
        "@brand my order page is broken: shop.example/account/orders/20 (home is fine: shop.example/) #bug #ShopFail"
    ),
    "paragraphs_br.html": (
        "@brand I paid twice for the same order.\nIt was yesterday evening.\nPlease help\n\n"
        "Thanks in advance\n\n— Alice"
    ),
    "entities_emoji.html": '@brand prices & fees <3 "free" isn\'t free 😡 :blobcat_angry: 💸',
    "arabic_rtl.html": "@brand مرحبا، كيف يمكنني التواصل مع الدعم؟\nشكرا 🙏",
    "quote_inline.html": "@brand same here, still broken",
    "remote_blocks.html": (
        "@brand@shop.example a remote server sends more tags:\n\nthe app crashes on start\n\n"
        "Android 14\nversion 3.2\n\nError: 42\n  at main()"
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.html")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_status_html_becomes_what_the_reader_sees(name: str) -> None:
    html = (FIXTURES / name).read_text(encoding="utf-8")
    assert html_to_text(html) == EXPECTED[name]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("no markup at all", "no markup at all"),
        ("<p>one</p><p></p><p></p><p>two</p>", "one\n\ntwo"),  # empty paragraphs add no blank lines
        ("<p>a<br><br><br><br>b</p>", "a\n\nb"),  # at most one blank line in a row
        ("<p>  padded  </p>", "padded"),
        ("<p>stray</span> closing</a> tags</p>", "stray closing tags"),
        ("<p>unclosed <span class='invisible'>hidden", "unclosed"),
        ("<p>a&nbsp;&#x5B;x&#93; &unknown; &amp;amp;</p>", "a\xa0[x] &unknown; &amp;"),
        ("<p>a\x01b\x02c</p>", "abc"),  # control characters cannot fake a line break
        ("<p>\u202bمرحبا\u202c</p>", "\u202bمرحبا\u202c"),  # bidi controls are the author's, kept
    ],
)
def test_edge_cases(html: str, text: str) -> None:
    assert html_to_text(html) == text
