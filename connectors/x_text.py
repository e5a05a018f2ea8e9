"""X's weighted text length (twitter-text v3 rules) and shortening a text to fit it.

X does not count characters: each code point weighs 1 or 2, any URL weighs 23 whatever
its length, and an emoji sequence (flags, skin tones, ZWJ families, keycaps) weighs 2
as a whole. The limit is 280. The rules below follow twitter-text's v3 configuration:

- weight 1 for code points in U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037
  (Latin, Cyrillic, Arabic, Hebrew, general punctuation...), weight 2 for everything else
  (CJK, emoji, symbols; note that "…" U+2026 and "•" U+2022 weigh 2);
- URLs are found as twitter-text finds them: with a scheme, or bare domains with a known
  TLD (a bare ``name.cc`` country domain counts only with a path; ``.co``/``.tv`` always),
  never the domain part of an e-mail address;
- the text is NFC-normalised first.

The URL and emoji matching is a faithful approximation, not twitter-text's generated
regexes: where it can be wrong it errs towards counting more, so a text it accepts fits.
"""

from __future__ import annotations

import re
import unicodedata

MAX_WEIGHTED_LENGTH = 280
URL_WEIGHT = 23

_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))

# Generic TLDs a bare domain may end with (twitter-text has the full IANA list; these are
# the ones people type). Any two-letter TLD is taken as a country code.
_GTLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|name|pro|mobi|aero|asia|jobs|museum|travel|tel|cat|coop|post|"
    "xxx|app|dev|page|blog|shop|store|online|site|website|tech|cloud|xyz|top|club|live|news|media|email|"
    "link|click|help|support|zone|world|today|network|digital|agency|company|services|solutions|group|"
    "social|games|art|design|studio|music|video|photo|photos|life|love|fun|one|vip|bot"
)
_TLD = rf"(?:{_GTLDS}|[a-z]{{2}})"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATH = r"(?:[/?#][^\s]*)?"
# Start of text, or a character that cannot be part of a word, handle, cashtag or hashtag.
_BEFORE = r"(?:(?<=[^A-Za-z0-9@＠$#＃\u202A-\u202E])|^)"
_WITH_SCHEME = re.compile(rf"{_BEFORE}https?://[^\s]+", re.IGNORECASE)
_WITHOUT_SCHEME = re.compile(
    rf"{_BEFORE}(?<![-_./])(?P<domain>(?:{_LABEL}\.)+{_TLD})(?![a-z0-9-])(?P<path>{_PATH})", re.IGNORECASE
)
_COUNTRY_ONLY = re.compile(rf"^{_LABEL}\.[a-z]{{2}}$", re.IGNORECASE)
_SPECIAL_COUNTRY = re.compile(rf"^{_LABEL}\.(?:co|tv)$", re.IGNORECASE)
_TRAILING = ".,:;!?'\")]}>…"
_CUT_PUNCTUATION = ".,:;!?-–—"  # dropped before the ellipsis when shortening

_VS15, _VS16, _ZWJ, _KEYCAP = 0xFE0E, 0xFE0F, 0x200D, 0x20E3
_KEYCAP_BASES = frozenset(map(ord, "0123456789#*"))
_TEXT_DEFAULT_BASES = _KEYCAP_BASES | {0x00A9, 0x00AE}  # emoji only when asked for (VS16/keycap)


def text_length(text: str) -> int:
    """Length of `text` as X counts it against the 280 limit."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for start, end in url_spans(text):
        total += _plain_length(text[position:start]) + URL_WEIGHT
        position = end
    return total + _plain_length(text[position:])


def fits(text: str, limit: int = MAX_WEIGHTED_LENGTH) -> bool:
    return text_length(text) <= limit


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


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each URL in `text`, as twitter-text would extract them."""
    spans: list[tuple[int, int]] = []
    for match in _WITH_SCHEME.finditer(text):
        spans.append((match.start(), match.start() + len(_strip_trailing(match.group()))))
    for match in _WITHOUT_SCHEME.finditer(text):
        if any(start <= match.start() < end for start, end in spans):
            continue
        domain, path = match.group("domain"), match.group("path")
        if not path and _COUNTRY_ONLY.match(domain) and not _SPECIAL_COUNTRY.match(domain):
            continue  # "name.ru" alone is not linked; "name.ru/x", "www.name.ru", "t.co" are
        end = match.start() + len(domain) + len(_strip_trailing(path)) if path else match.end("domain")
        spans.append((match.start(), end))
    return sorted(spans)


def _strip_trailing(url: str) -> str:
    while url and url[-1] in _TRAILING:
        # A closing bracket belongs to the URL when it closes one opened inside it.
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _plain_length(text: str) -> int:
    points = [ord(c) for c in text]
    total = 0
    i = 0
    while i < len(points):
        size = _emoji_sequence_size(points, i)
        if size:
            total += 2
            i += size
        else:
            total += _weight(points[i])
            i += 1
    return total


def _weight(point: int) -> int:
    return 1 if any(low <= point <= high for low, high in _LIGHT_RANGES) else 2


def _is_pictographic(point: int) -> bool:
    return (
        0x1F000 <= point <= 0x1FAFF
        or 0x2600 <= point <= 0x27BF
        or 0x2300 <= point <= 0x23FF
        or 0x2B00 <= point <= 0x2BFF
        or 0x2190 <= point <= 0x21FF
        or 0x25A0 <= point <= 0x25FF
        or point in (0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def _is_regional_indicator(point: int) -> bool:
    return 0x1F1E6 <= point <= 0x1F1FF


def _emoji_sequence_size(points: list[int], start: int) -> int:
    """Number of code points in the emoji sequence starting at `start`, 0 if there is none."""
    i = _emoji_element_end(points, start)
    if i == start:
        return 0
    while i + 1 < len(points) and points[i] == _ZWJ:
        after = _emoji_element_end(points, i + 1)
        if after == i + 1:
            break
        i = after
    return i - start


def _emoji_element_end(points: list[int], start: int) -> int:
    """End of one emoji element (base plus its modifiers) at `start`, or `start` if none."""
    n = len(points)
    point = points[start]
    nxt = points[start + 1] if start + 1 < n else None
    if _is_regional_indicator(point):
        return start + 2 if nxt is not None and _is_regional_indicator(nxt) else start + 1
    if point in _TEXT_DEFAULT_BASES:
        i = start + 1
        if i < n and points[i] == _VS16:
            i += 1
        if point in _KEYCAP_BASES and i < n and points[i] == _KEYCAP:
            return i + 1
        return i if i > start + 1 and point not in _KEYCAP_BASES else start
    if not _is_pictographic(point):
        return start
    i = start + 1
    if i < n and points[i] in (_VS15, _VS16):
        i += 1
    if i < n and 0x1F3FB <= points[i] <= 0x1F3FF:  # skin tone
        i += 1
    while i < n and 0xE0020 <= points[i] <= 0xE007F:  # tag sequence (subdivision flags)
        i += 1
    if i < n and points[i] == _KEYCAP:
        i += 1
    return i
