"""X's weighted text length, its URLs and shortening, checked against twitter-text's own conformance files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from twitter_text import parse_tweet

from connectors.x_text import MAX_WEIGHTED_LENGTH, fits, shorten, text_length, url_spans, urls

CONFORMANCE = Path(__file__).parent / "fixtures" / "twitter-text"  # see SOURCE.md there


def conformance(name: str, section: str) -> list[Any]:
    cases: list[Any] = yaml.safe_load((CONFORMANCE / name).read_text(encoding="utf-8"))["tests"][section]
    return cases


def ids(cases: list[Any]) -> list[str]:
    return [str(case["description"])[:60] for case in cases]


WEIGHTED = conformance("validate.yml", "WeightedTweetsWithDiscountedEmojiCounterTest") + conformance(
    "validate.yml", "UnicodeDirectionalMarkerCounterTest"
)
EXTRACTED = conformance("extract.yml", "urls") + conformance("extract.yml", "tco_urls_with_params")
WITH_INDICES = conformance("extract.yml", "urls_with_indices") + conformance(
    "extract.yml", "urls_with_directional_markers"
)


@pytest.mark.parametrize("case", WEIGHTED, ids=ids(WEIGHTED))
def test_weighted_length_passes_twitter_texts_conformance_suite(case: dict[str, Any]) -> None:
    assert text_length(case["text"]) == case["expected"]["weightedLength"]
    assert parse_tweet(case["text"]).asdict() == case["expected"]  # validity and ranges too


@pytest.mark.parametrize("case", EXTRACTED, ids=ids(EXTRACTED))
def test_urls_pass_twitter_texts_conformance_suite(case: dict[str, Any]) -> None:
    assert urls(case["text"]) == case["expected"]


@pytest.mark.parametrize("case", WITH_INDICES, ids=ids(WITH_INDICES))
def test_url_positions_pass_twitter_texts_conformance_suite(case: dict[str, Any]) -> None:
    assert [list(span) for span in url_spans(case["text"])] == [u["indices"] for u in case["expected"]]


def test_the_suite_is_all_there() -> None:
    # 91 extraction cases: carebot's own regexes passed 59 of them; a shortened file would pass silently.
    assert (len(conformance("extract.yml", "urls")), len(WEIGHTED), len(WITH_INDICES)) == (91, 24, 12)


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
    ("©", 2),  # an emoji to twitter-text (Unicode's emoji-test.txt lists it, unqualified)
    ("©️", 2),
    ("https://example.com/a/very/long/path/that/goes/on/and/on?q=1", 23),
    ("http://a.io", 23),
    ("see https://example.com.", 4 + 23 + 1),  # trailing punctuation is not part of the URL
    ("(https://example.com/x)", 1 + 23 + 1),
    ("visit acme.com today", 6 + 23 + 6),  # bare generic TLD counts as a URL
    ("www.acme.ru", 23),
    ("acme.ru/help", 23),
    ("acme.ru", 23),  # a bare country domain is a link too (twitter-text 3)
    ("name.ru", 23),
    ("shop.de", 23),
    ("acme.id", 23),
    ("Thanks from Bit.ly support", 12 + 23 + 8),  # a brand named like a domain
    ("https://acme.example/help", 25),  # not a known TLD: not a URL, even with a scheme
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
    assert urls(text) == found


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
    text = "Details: https://acme.com/help/orders/late " + "word " * 100
    short = shorten(text, 36)  # 9 + 23 + 2 fits; one more word would not
    assert short == "Details: https://acme.com/help/orders/late…"


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


_WITHOUT_PKG_RESOURCES = """
import importlib.abc, sys, warnings

class SetuptoolsWithoutPkgResources(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pkg_resources":
            raise ModuleNotFoundError("No module named 'pkg_resources'")

sys.meta_path.insert(0, SetuptoolsWithoutPkgResources())
warnings.simplefilter("error")
from connectors.x_text import text_length, urls
print(text_length("hi 😷 shop.de"), urls("see shop.de"), "pkg_resources" in sys.modules)
"""


def test_counting_works_where_setuptools_no_longer_has_pkg_resources() -> None:
    # twitter-text-parser 3.0.0 reads its emoji list through pkg_resources (gone in setuptools 82).
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PKG_RESOURCES], capture_output=True, text=True, cwd=root, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["29", "['shop.de']", "False"]
