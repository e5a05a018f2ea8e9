"""Cue word lists (cues.yaml) compiled into fast matchers over normalised text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.classifier.text import normalize

CUES_PATH = Path(__file__).with_name("cues.yaml")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")
_WORDISH = re.compile(r"[^\W_]")
# Arabic glues conjunctions, prepositions and the article to the word (و، ف، ب، ل، ك، ال).
_ARABIC_PREFIX = "(?:[وف]?(?:[بلك]|ال|بال|لل)?|[وف]?ال)?"


@dataclass(frozen=True)
class CueSet:
    """All phrases of all cues in one trie-shaped regex; each match is mapped back to its cues."""

    pattern: re.Pattern[str]
    exact: Mapping[str, frozenset[str]]  # phrase -> cue names
    stems: Mapping[str, frozenset[str]]

    def counts(self, normalized: str) -> dict[str, int]:
        result: dict[str, int] = {}
        for match in self.pattern.finditer(normalized):
            core = match.group("ar") or match.group("ars") or match.group()
            for name in self._cues_of(core):
                result[name] = result.get(name, 0) + 1
        return result

    def _cues_of(self, matched: str) -> set[str]:
        # The regex keeps the longest phrase; shorter phrases it starts with count too
        # ("how much" is a price cue and "how" a question cue).
        names: set[str] = set()
        for end in range(len(matched), 0, -1):
            prefix = matched[:end]
            if prefix in self.stems:
                names.update(self.stems[prefix])
            if prefix in self.exact and (end == len(matched) or not matched[end].isalnum()):
                names.update(self.exact[prefix])
        return names


def compile_cues(lists: Mapping[str, Iterable[str]]) -> CueSet:
    exact: dict[str, set[str]] = {}
    stems: dict[str, set[str]] = {}
    for name, phrases in lists.items():
        for phrase in phrases:
            is_stem = phrase.endswith("*") and len(phrase) > 1
            text = normalize(phrase[:-1] if is_stem else phrase)
            if text:
                (stems if is_stem else exact).setdefault(text, set()).add(name)
    return CueSet(
        pattern=_compile(exact, stems),
        exact={k: frozenset(v) for k, v in exact.items()},
        stems={k: frozenset(v) for k, v in stems.items()},
    )


@cache
def default_cue_lists() -> dict[str, tuple[str, ...]]:
    """cue name -> phrases of all languages, from the shipped cues.yaml."""
    raw = yaml.load(CUES_PATH.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return {name: tuple(p for phrases in by_lang.values() for p in phrases) for name, by_lang in raw.items()}


@cache
def default_cues() -> CueSet:
    return compile_cues(default_cue_lists())


def _compile(exact_phrases: Iterable[str], stem_phrases: Iterable[str]) -> re.Pattern[str]:
    """One regex for many phrases, shaped as a trie so each position tries one branch."""
    exact: set[str] = set()
    stems: set[str] = set()
    arabic_exact: set[str] = set()
    arabic_stems: set[str] = set()
    symbols: set[str] = set()
    for text, is_stem in [(p, False) for p in exact_phrases] + [(p, True) for p in stem_phrases]:
        if not _WORDISH.search(text):
            symbols.add(text)
        elif _ARABIC_LETTER.match(text):
            (arabic_stems if is_stem else arabic_exact).add(text)
        else:
            (stems if is_stem else exact).add(text)
    never = r"(?!x)x"
    parts = [
        rf"(?<![^\W_])(?:{_trie(exact) or never})(?![^\W_])",
        rf"(?<![^\W_])(?:{_trie(stems) or never})[^\W_]*",
        rf"(?<![^\W_]){_ARABIC_PREFIX}(?P<ar>{_trie(arabic_exact) or never})(?![^\W_])",
        rf"(?<![^\W_]){_ARABIC_PREFIX}(?P<ars>{_trie(arabic_stems) or never}[^\W_]*)",
    ]
    if symbols:
        parts.append(_trie(symbols))
    return re.compile("|".join(parts))


def _trie(words: Sequence[str] | set[str]) -> str:
    root: dict[str, Any] = {}
    for word in sorted(words):
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _pattern(root)


def _pattern(node: dict[str, Any]) -> str:
    ends = "" in node
    branches = [re.escape(char) + _pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Longest match first: the optional branch is tried before stopping here.
    return f"(?:{body})?" if ends else body
