"""Text normalisation shared by language detection, features and signals."""

from __future__ import annotations

import re
import unicodedata

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?|<[A-Z_]+>")
_REPEAT = re.compile(r"(.)\1{2,}")
_SPACE = re.compile(r"\s+")
# Words: letters/digits of any script plus the apostrophe; emoji become their own tokens.
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[\U0001F000-\U0001FAFF\u2600-\u27BF]")

# Arabic diacritics and tatweel carry no meaning for us; letter variants are folded so
# spelling habits (أ/إ/ا, ى/ي, ة/ه) do not split features.
_ARABIC_FOLD = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ي",
        "ـ": None,
        "ё": "е",
        "’": "'",
        "‘": "'",
        "٠": "0",
        "١": "1",
        "٢": "2",
        "٣": "3",
        "٤": "4",
        "٥": "5",
        "٦": "6",
        "٧": "7",
        "٨": "8",
        "٩": "9",
        "؟": "?",
        "،": ",",
    }
)
_ARABIC_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")


def normalize(text: str) -> str:
    """Lower-cased, URL/handle-free text with folded letter variants and squeezed repeats."""
    text = unicodedata.normalize("NFC", text)
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    text = text.lower().translate(_ARABIC_FOLD)
    text = _ARABIC_MARKS.sub("", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip()


def words(normalized: str) -> list[str]:
    return _WORD.findall(normalized)


def strip_handles_and_urls(text: str) -> str:
    """The text a person typed, without addressing and links (case kept)."""
    return _SPACE.sub(" ", _HANDLE.sub(" ", _URL.sub(" ", text))).strip()


def case_counts(text: str) -> tuple[int, int]:
    """(upper-case letters, letters that have a case at all) in `text`; Arabic has no case."""
    upper = sum(map(str.isupper, text))
    return upper, upper + sum(map(str.islower, text))
