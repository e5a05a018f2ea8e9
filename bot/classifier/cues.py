"""Cue word lists (cues.yaml) compiled into fast matchers over normalised text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from bot.classifier.text import normalize

CUES_PATH = Path(__file__).with_name("cues.yaml")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")
_WORDISH = re.compile(r"[^\W_]")
# Arabic glues conjunctions, prepositions and the article to the word.
_ARABIC_PREFIXES = ("", "و", "ف", "ب", "ل", "ك", "ال", "وال", "فال", "بال", "لل", "وبال", "ولل")


@dataclass(frozen=True)
class CueSet:
    """One compiled matcher per cue name."""

    matchers: Mapping[str, re.Pattern[str]]

    def counts(self, normalized: str) -> dict[str, int]:
        result: dict[str, int] = {}
        for name, pattern in self.matchers.items():
            found = pattern.findall(normalized)
            if found:
                result[name] = len(found)
        return result

    def hits(self, name: str, normalized: str) -> list[str]:
        pattern = self.matchers.get(name)
        return pattern.findall(normalized) if pattern else []


def compile_cues(lists: Mapping[str, Iterable[str]]) -> CueSet:
    return CueSet({name: _compile(phrases) for name, phrases in lists.items()})


@cache
def default_cue_lists() -> dict[str, tuple[str, ...]]:
    """cue name -> phrases of all languages, from the shipped cues.yaml."""
    raw = yaml.load(CUES_PATH.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return {name: tuple(p for phrases in by_lang.values() for p in phrases) for name, by_lang in raw.items()}


@cache
def default_cues() -> CueSet:
    return compile_cues(default_cue_lists())


def _compile(phrases: Iterable[str]) -> re.Pattern[str]:
    """One regex for many phrases, shaped as a trie so each position tries one branch."""
    exact: set[str] = set()
    stems: set[str] = set()
    symbols: set[str] = set()
    for phrase in phrases:
        is_stem = phrase.endswith("*") and len(phrase) > 1
        text = normalize(phrase[:-1] if is_stem else phrase)
        if not text:
            continue
        variants = [p + text for p in _ARABIC_PREFIXES] if _ARABIC_LETTER.match(text) else [text]
        if not _WORDISH.search(text):
            symbols.update(variants)
        elif is_stem:
            stems.update(variants)
        else:
            exact.update(variants)
    parts = []
    if exact:
        parts.append(rf"(?<![^\W_])(?:{_trie(exact)})(?![^\W_])")
    if stems:
        parts.append(rf"(?<![^\W_])(?:{_trie(stems)})[^\W_]*")
    if symbols:
        parts.append(_trie(symbols))
    return re.compile("|".join(parts) or r"(?!x)x")


def _trie(words: Sequence[str] | set[str]) -> str:
    root: dict[str, dict] = {}
    for word in sorted(words):
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _pattern(root)


def _pattern(node: dict[str, dict]) -> str:
    ends = "" in node
    branches = [re.escape(char) + _pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Longest match first: the optional branch is tried before stopping here.
    return f"(?:{body})?" if ends else body
