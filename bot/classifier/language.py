"""Language detection for en, ru, id and ar; anything else falls back to the caller's default.

Script decides first (Cyrillic, Arabic); Latin text is told apart by function words and slang,
which survive typos and short posts better than letter statistics do. Russian typed in Latin
letters and Arabizi ("3ayez") are recognised by their own word lists.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from bot.classifier.text import normalize, strip_handles_and_urls, words

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f]")
# Greek, Hebrew, Indic, Thai, Japanese, Chinese, Korean.
_OTHER_SCRIPT = re.compile(
    r"[\u0370-\u03ff\u0590-\u05ff\u0900-\u0dff\u0e00-\u0e7f\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]"
)
# Letters that Russian never uses but its neighbours do (Ukrainian, Belarusian, Kazakh...).
_NOT_RUSSIAN = re.compile(r"[іїєґўәғқңөұүһ]")
# Letters of Persian and Urdu that Arabic does not use.
_NOT_ARABIC = re.compile(r"[پچژگکیےٹڈڑںہ]")
_LETTER = re.compile(r"[^\W\d_]")
_HANDLE_WORD = re.compile(r"(?<![\w@])@([\w.]+)")
_ARABIZI_WORD = re.compile(r"^(?=.*[a-z])(?=.*[235789])[a-z235789']+$")

WORDS_PATH = Path(__file__).with_name("language_words.yaml")


@cache
def _word_lists() -> dict[str, frozenset[str]]:
    raw = yaml.load(WORDS_PATH.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return {name: frozenset(words) for name, words in raw.items()}


def detect_language(text: str, default: str = "en", normalized: str | None = None) -> tuple[str, float]:
    """(language, confidence) for en, ru, id, ar; other languages and empty posts give `default`.

    `normalized` is `normalize(text)` when the caller already has it.
    """
    body = strip_handles_and_urls(text)
    if not _LETTER.search(body):
        # Nothing typed but a handle and emoji: the handle's script is the only hint left.
        handles = " ".join(_HANDLE_WORD.findall(text))
        cyr, arb = len(_CYRILLIC.findall(handles)), len(_ARABIC.findall(handles))
        if max(cyr, arb) > len(_LATIN.findall(handles)):
            return ("ru" if cyr > arb else "ar"), 0.2
        return default, 0.0
    return _by_script(body, default, normalized)


def _by_script(body: str, default: str, normalized: str | None) -> tuple[str, float]:
    cyr = len(_CYRILLIC.findall(body))
    arb = len(_ARABIC.findall(body))
    lat = len(_LATIN.findall(body))
    oth = len(_OTHER_SCRIPT.findall(body))
    letters = cyr + arb + lat + oth
    if letters == 0:
        return default, 0.0
    if cyr >= max(arb, lat, oth) and cyr > 0:
        foreign = len(_NOT_RUSSIAN.findall(body.lower()))
        if foreign >= 2 or (foreign and cyr < 20):
            return default, 0.3
        return "ru", _script_confidence(cyr, letters)
    if arb >= max(lat, oth) and arb > 0:
        if len(_NOT_ARABIC.findall(body)) >= 2:
            return default, 0.3
        return "ar", _script_confidence(arb, letters)
    if oth > lat:
        return default, 0.2
    return _latin_language(body, default)


def _script_confidence(count: int, letters: int) -> float:
    share = count / letters
    return round(min(0.99, 0.5 + 0.5 * share) if count >= 3 else 0.6 * share, 3)


def _latin_language(body: str, default: str) -> tuple[str, float]:
    tokens = words(normalize(body))
    lists = _word_lists()
    en, id_, loans = lists["en"], lists["id"], lists["loans"]
    ru_latin, arabizi, other_latin = lists["ru_latin"], lists["arabizi"], lists["other_latin"]
    scores = {"en": 0.0, "id": 0.0, "ru": 0.0, "ar": 0.0, "other": 0.0}
    for token in tokens:
        if token in loans:
            continue
        if token in id_:
            scores["id"] += 1.0
        elif token.endswith(("nya", "kan", "lah")) and len(token) > 5:
            scores["id"] += 0.5
        if token in en:
            scores["en"] += 1.0
        elif token.endswith(("ing", "tion", "n't", "'s", "ed")) and len(token) > 4:
            scores["en"] += 0.5
        if token in ru_latin:
            scores["ru"] += 1.0
        if token in arabizi:
            scores["ar"] += 1.0
        elif _ARABIZI_WORD.match(token):
            scores["ar"] += 0.7
        if token in other_latin:
            scores["other"] += 1.0
    best = max(scores, key=lambda lang: (scores[lang], lang == default))
    total = sum(scores.values())
    if scores[best] == 0:
        return default, 0.3
    if best == "other":
        return default, 0.3
    # Both word lists share short words (a, di, ya...); demand a clear lead before leaving
    # the brand's default between the two Latin languages.
    if best in ("ru", "ar") and scores[best] < 1.5:
        best = max(("en", "id"), key=lambda lang: (scores[lang], lang == default))
        if scores[best] == 0:
            return default, 0.3
    confidence = scores[best] / total
    evidence = min(1.0, scores[best] / 3)
    return best, round(0.4 + 0.59 * confidence * evidence, 3)
