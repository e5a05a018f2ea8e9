"""Mastodon status HTML to the plain text a person sees on screen.

Mastodon sends a post's body as sanitised HTML: paragraphs, `<br>`, h-card
mention links, hashtag links, and long URLs split into `invisible` and
`ellipsis` spans. Remote servers may add the few block tags Mastodon lets
through (blockquote, pre, lists). We keep what the web UI shows: `@handle` and
`#tag` as text, the visible part of a URL, line and paragraph breaks.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Paragraph-like blocks become separate lines, as Mastodon's own plain-text
# rendering (PlainTextFormatter) does.
_BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div"})
# Elements whose text the web UI hides: the invisible halves of a long URL, and
# the "RE: <link>" fallback that Mastodon 4.4+ adds to quote posts for old clients.
_HIDDEN_CLASSES = frozenset({"invisible", "quote-inline"})
_VOID = frozenset({"br", "img", "hr", "input", "meta", "link", "source", "wbr"})
_PARAGRAPHS = frozenset({"p", "blockquote", "pre"})
_LINE, _PARAGRAPH = "\x01", "\x02"
_NO_MARKS = str.maketrans("", "", _LINE + _PARAGRAPH)
_MARK_RUN = re.compile(r"[ \t]*[\x01\x02][\x01\x02 \t]*")
_SPACES = re.compile(r"[ \t\r\n\f]+")
_BLANK_RUN = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Plain text of a status body: entities decoded, `<br>` a newline, paragraphs a blank line."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.text()


def _merge_marks(run: re.Match[str]) -> str:
    return "\n\n" if _PARAGRAPH in run.group() else "\n"


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        # One entry per open non-void element: whether it hides its content.
        self._stack: list[tuple[str, bool]] = []
        self._hidden_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            if not self._hidden_depth:
                self._parts.append("\n")
            return
        if tag in _BLOCKS:
            self._break(tag)
        if tag in _VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        hides = bool(classes & _HIDDEN_CLASSES)
        self._stack.append((tag, hides))
        self._hidden_depth += hides
        self._pre_depth += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(open_tag == tag for open_tag, _ in self._stack):
            return  # a stray closing tag: ignore it rather than unbalance the stack
        while self._stack:
            open_tag, hides = self._stack.pop()
            self._hidden_depth -= hides
            self._pre_depth -= open_tag == "pre"
            if open_tag == tag:
                break
        if tag in _BLOCKS:
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        data = data.translate(_NO_MARKS)  # the marks are reserved for block breaks
        # Outside <pre>, source whitespace is layout, not content (HTML collapses it).
        self._parts.append(data if self._pre_depth else _SPACES.sub(" ", data))

    def _break(self, tag: str) -> None:
        # A mark, not a newline yet: adjacent block edges must merge into one break.
        self._parts.append(_PARAGRAPH if tag in _PARAGRAPHS else _LINE)

    def text(self) -> str:
        raw = _MARK_RUN.sub(_merge_marks, "".join(self._parts))
        lines = [line.rstrip(" \t") for line in raw.split("\n")]
        return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()
