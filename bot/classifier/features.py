"""A post as sparse features: character n-grams, words, word pairs and cue counts.

Character n-grams carry Russian and Arabic morphology, typos and slang spellings; words and
pairs carry meaning; cue counts (cues.yaml) let a small training set generalise across brands.
Each group is scaled so long posts do not shout louder than short ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from bot.classifier.cues import CueSet
from bot.classifier.text import case_counts, normalize, strip_handles_and_urls, words

# Lengths 3-5 only: adding 2-grams (a quarter more features to look up per post) did no better in
# cross-validation on the training examples (accuracy 0.888 with them, 0.891 without).
CHAR_NGRAMS = (3, 4, 5)
# Text groups weigh more than the cue/shape group; 5 won the cross-validation on the training
# examples (tried 1, 3, 5, 8, 12): with less, the model leans on a few cues and ignores wording.
TEXT_WEIGHT = 5.0
_DIGIT = re.compile(r"\d")
_UPPER_WORD = re.compile(r"\b[A-ZА-ЯЁ]{3,}\b")


@dataclass(frozen=True)
class Features:
    """Feature names per group and each group's scale (the value every feature in it takes)."""

    groups: tuple[tuple[tuple[str, ...], float], ...]


def extract(text: str, lang: str, cues: CueSet) -> Features:
    norm = normalize(text)
    return extract_normalized(text, norm, lang, cues.counts(norm))


def extract_normalized(text: str, norm: str, lang: str, counts: Mapping[str, int]) -> Features:
    """Features of a post whose normalised text and cue counts the caller already has."""
    padded = f" {_DIGIT.sub('0', norm)} "
    chars = {padded[i : i + n] for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)}
    tokens = words(norm)
    word_feats = {"w:" + t for t in tokens}
    word_feats.update("b:" + a + " " + b for a, b in pairwise(tokens))
    meta = [f"lang:{lang}", "bias"]
    for name, count in counts.items():
        meta.append(f"q:{name}")
        if count > 1:
            meta.append(f"q:{name}:2+")
        meta.append(f"q:{name}:{lang}")
    if "service" not in counts:
        meta.append("s:no_service")  # nothing a brand provides is named: rarely a complaint
    meta.extend(_shape(strip_handles_and_urls(text), norm, len(tokens)))
    return Features(
        (
            (tuple(chars), TEXT_WEIGHT / math.sqrt(len(chars) or 1)),
            (tuple(word_feats), TEXT_WEIGHT / math.sqrt(len(word_feats) or 1)),
            (tuple(meta), 1.0),
        )
    )


def _shape(raw: str, norm: str, n_tokens: int) -> list[str]:
    shape = []
    if "?" in norm:
        shape.append("s:question_mark")
    if "!!" in norm or "!?" in norm or "?!" in norm:
        shape.append("s:exclaim")
    if n_tokens <= 3:
        shape.append("s:very_short")
    elif n_tokens <= 8:
        shape.append("s:short")
    elif n_tokens >= 30:
        shape.append("s:long")
    upper, cased = case_counts(raw)
    if cased >= 8 and upper / cased > 0.6:
        shape.append("s:caps")
    elif len(_UPPER_WORD.findall(raw)) >= 2:
        shape.append("s:caps_words")
    if _DIGIT.search(norm):
        shape.append("s:digits")
    return shape
