"""X's weighted text length and shortening, checked against twitter-text v3's counting rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.x_text import MAX_WEIGHTED_LENGTH, fits, shorten, text_length, url_spans

CASES = [
    ("", 0),
    ("Hello, world", 12),
    ("Привет, как дела?", 17),  # Cyrillic weighs 1
    ("مرحبا بكم", 9),  # Arabic weighs 1
    ("Halo, apa kabar?", 16),
    ("你好世界", 8),  # CJK weighs 2
    ("こんにちは", 10),
    ("한국어", 6),
    ("—“quoted”‘x’", 12),  # U+2010-U+201F weigh 1
    ("…", 2),  # U+2026 is outside the light ranges
    ("•", 2),
    ("′″", 2),  # U+2032-U+2037 weigh 1
    ("🐱", 2),
    ("❤️", 2),  # emoji + VS16 is one emoji
    ("👍🏽", 2),  # skin tone
    ("👨‍👩‍👧‍👦", 2),  # ZWJ family
    ("🇮🇩🇷🇺", 4),  # two flags
    ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", 2),  # tag sequence
    ("1️⃣", 2),  # keycap
    ("1", 1),
    ("©", 1),  # text presentation: a plain character
    ("©️", 2),
    ("https://example.com/a/very/long/path/that/goes/on/and/on?q=1", 23),
    ("http://a.io", 23),
    ("see https://example.com.", 4 + 23 + 1),  # trailing punctuation is not part of the URL
    ("(https://example.com/x)", 1 + 23 + 1),
    ("visit acme.com today", 6 + 23 + 6),  # bare generic TLD counts as a URL
    ("www.acme.ru", 23),
    ("acme.ru/help", 23),
    ("acme.ru", 7),  # bare country domain without a path is not linked
    ("t.co", 23),
    ("write to help@acme.com", 22),  # an e-mail address is not a URL
    ("config.yaml", 11),
    ("a" * 280, 280),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_text_length_counts_like_x(text: str, expected: int) -> None:
    assert text_length(text) == expected


def test_nfc_normalisation_counts_composed_characters_once() -> None:
    decomposed = "e\u0301"  # e + combining acute
    assert text_length(decomposed) == text_length("é") == 1


def test_url_spans_find_each_url_once() -> None:
    text = "see https://acme.com/x and acme.com/y, mail help@acme.com"
    found = [text[start:end] for start, end in url_spans(text)]
    assert found == ["https://acme.com/x", "acme.com/y"]


def test_limit_is_280_weighted() -> None:
    assert fits("a" * 280)
    assert not fits("a" * 281)
    assert fits("你" * 140)
    assert not fits("你" * 141)
    assert MAX_WEIGHTED_LENGTH == 280


def test_shorten_keeps_text_that_fits() -> None:
    assert shorten("Thanks, we are on it!") == "Thanks, we are on it!"


def test_shorten_cuts_between_words_and_marks_the_cut() -> None:
    text = "We are sorry your order is late. " * 20
    short = shorten(text, 60)
    assert text_length(short) <= 60
    assert short.endswith("…")
    body = short.removesuffix("…")
    assert text.startswith(body)
    assert text[len(body)] in " ."  # the cut falls between words


def test_shorten_never_splits_a_url() -> None:
    text = "Details: https://acme.example/help/orders/late " + "word " * 100
    short = shorten(text, 36)  # 9 + 23 + 2 fits; one more word would not
    assert short == "Details: https://acme.example/help/orders/late…"


def test_shorten_gives_nothing_when_the_first_word_does_not_fit() -> None:
    assert shorten("x" * 300, 280) == ""


words = st.lists(
    st.text(alphabet=st.sampled_from("abcdeабвгд你好🐱é"), min_size=1, max_size=12), min_size=1, max_size=60
)


@given(words, st.integers(min_value=10, max_value=280))
def test_shortened_text_always_fits_and_is_made_of_whole_words(parts: list[str], limit: int) -> None:
    text = " ".join(parts)
    short = shorten(text, limit)
    assert text_length(short) <= limit
    if short and short != text:
        kept = short.removesuffix("…").split(" ")
        assert kept == parts[: len(kept)]
