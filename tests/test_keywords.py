from __future__ import annotations

import pytest

from bot.decide.keywords import Keywords, normalise, phrase_problem


@pytest.mark.parametrize(
    ("phrase", "text", "matches"),
    [
        ("idea", "I have an idea for you", True),
        ("idea", "no ideas here", False),
        ("ide", "ada ide nih min", True),
        ("ide", "identity theft", False),
        ("thank*", "Thanks a lot!", True),
        ("reset* password", "resetting   PASSWORD fails", True),
        ("reset* password", "reset my password", False),
        ("спасиб*", "СПАСИБО огромное", True),
        ("не пришёл", "заказ не пришел", True),  # ё and е are the same letter to most typists
        ("احسنتم", "أحسنتم يا فريق", True),  # hamza forms fold to bare alef
        ("شكرا", "شُكْرًا لكم", True),  # vowel marks are ignored
        ("a.b", "axb", False),  # phrases are text, not patterns
    ],
)
def test_keyword_phrases_match_whole_words(phrase: str, text: str, matches: bool) -> None:
    assert Keywords.of({"en": (phrase,)}).search(text) is matches


def test_phrases_from_every_language_are_searched() -> None:
    words = Keywords.of({"en": ("thanks",), "ru": ("спасибо",), "id": ("makasih",), "ar": ("شكرا",)})
    assert words.search("makasih min, thanks!")
    assert words.search("Спасибо")
    assert not words.search("no gratitude here")


@pytest.mark.parametrize(
    ("phrase", "problem"),
    [("thank*", False), ("reset* password*", False), ("th*nks", True), ("thanks**", True), ("*", True)],
)
def test_a_star_may_only_end_a_word(phrase: str, problem: bool) -> None:
    assert (phrase_problem(phrase) is not None) is problem


def test_normalise_folds_case_and_spelling_variants() -> None:
    assert normalise("ЁЛКА") == "елка"
    assert normalise("إِنْتَرْنِت") == "انترنت"
