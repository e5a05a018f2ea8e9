"""X's weighted text length and the URLs X finds in a text (twitter-text v3 rules), and shortening a text.

X does not count characters: each code point weighs 1 or 2, any URL weighs 23 whatever its length, and
an emoji sequence weighs 2 as a whole; the limit is 280. Which words are URLs is twitter-text's business:
with a scheme, or a bare domain with a known TLD (`acme.com`, and a bare country domain too: `shop.de`,
`name.ru`, `Bit.ly`), never the domain of an e-mail address. Both come from `twitter-text-parser` (MIT, a
pure-Python port of twitter-text 3 that passes its conformance suite; tests/test_x_text.py runs the
suite's `validate.yml` and `extract.yml` against it).

That package (3.0.0, 2020) reads its emoji list through `pkg_resources`, which setuptools 80-81 warn
about and setuptools 82 removed: `_twitter_text` lends it that one function, for its import only. Its
emoji list is Unicode 12's: a newer emoji sequence counts as its parts (more than X counts, never less).
"""

from __future__ import annotations

import importlib
import re
import sys
import types
import warnings
from importlib import resources
from typing import Any


def _twitter_text() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        try:
            importlib.import_module("pkg_resources")
            lent = False
        except ImportError:  # setuptools 82 or later
            lent = True
            stand_in = types.ModuleType("pkg_resources")
            stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = stand_in
        try:
            return importlib.import_module("twitter_text")
        finally:
            if lent:
                del sys.modules["pkg_resources"]


def _resource_string(module: str, name: str) -> bytes:
    """What pkg_resources.resource_string does: the bytes of the file `name` beside the module `module`."""
    spec = sys.modules[module].__spec__
    is_package = spec is not None and spec.submodule_search_locations is not None
    return resources.files(module if is_package else module.rpartition(".")[0]).joinpath(name).read_bytes()


_TT = _twitter_text()

MAX_WEIGHTED_LENGTH = 280
URL_WEIGHT = 23
_CUT_PUNCTUATION = ".,:;!?-–—"  # dropped before the ellipsis when shortening


def text_length(text: str) -> int:
    """Length of `text` as X counts it against the 280 limit."""
    return int(_TT.parse_tweet(text).weightedLength)


def fits(text: str, limit: int = MAX_WEIGHTED_LENGTH) -> bool:
    return text_length(text) <= limit


def urls(text: str) -> list[str]:
    """The URLs X would find (and link, and bill for) in `text`."""
    return [str(found["url"]) for found in _TT.extract_urls_with_indices(text)]


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each URL in `text`, as twitter-text extracts them."""
    return [(int(found["indices"][0]), int(found["indices"][1])) for found in _TT.extract_urls_with_indices(text)]


def shorten(text: str, limit: int = MAX_WEIGHTED_LENGTH, ellipsis: str = "…") -> str:
    """`text` if it fits, else its longest word-boundary prefix that fits with `ellipsis` added.

    Never cuts inside a word, a URL or an emoji sequence; returns "" if not even the first
    word fits.
    """
    if fits(text, limit):
        return text
    words = re.split(r"(\s+)", text.strip())
    best = ""
    for end in range(1, len(words) + 1, 2):
        candidate = "".join(words[:end]).rstrip(_CUT_PUNCTUATION) + ellipsis
        if not fits(candidate, limit):
            break
        best = candidate
    return best
