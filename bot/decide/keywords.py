"""Keyword phrases from the playbooks: whole words, a `*` to let a word go on, nothing more."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u0640]")  # harakat and tatweel
_FOLDS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ё": "е"})


def normalise(text: str) -> str:
    """Fold case and spelling variants so a phrase matches however the author typed it."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_FOLDS)
    return _ARABIC_MARKS.sub("", text)


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words; a `*` ending a word lets it go on ("спасиб*" matches "спасибо")."""
    parts = [re.escape(w.rstrip("*")) + (r"\w*" if w.endswith("*") else "") for w in normalise(phrase).split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")


def phrase_problem(phrase: str) -> str | None:
    """Why a phrase cannot be used, or None."""
    if any("*" in w.rstrip("*") or w.endswith("**") or w == "*" for w in phrase.split()):
        return '`*` may only end a word, once ("reset* password")'
    return None


@dataclass(frozen=True)
class Keywords:
    """Phrases per language; a post matches when it contains any of them (posts mix languages)."""

    phrases: Mapping[str, tuple[str, ...]]
    patterns: tuple[re.Pattern[str], ...] = field(repr=False)

    @classmethod
    def of(cls, phrases: Mapping[str, tuple[str, ...]]) -> Keywords:
        patterns = tuple(phrase_pattern(p) for items in phrases.values() for p in items)
        return cls(MappingProxyType(dict(phrases)), patterns)

    def search(self, text: str) -> bool:
        folded = normalise(text)
        return any(pattern.search(folded) for pattern in self.patterns)
