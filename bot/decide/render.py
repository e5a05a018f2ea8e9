"""Playbook templates -> reply text: fill the brand's placeholders and address the author.

The only thing taken from the post is the author's handle, reduced to a safe character set;
templates never see the post text, which is what keeps personal data out of public replies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.config import Brand
from bot.decide.keywords import normalise

PLACEHOLDERS: frozenset[str] = frozenset({"brand", "support_email", "support_url", "support_channels"})

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNSAFE_HANDLE = re.compile(r"[^A-Za-z0-9_.@-]")
_SPACES = re.compile(r"[ \t]+")
# The reply's address and the brand's contacts come from the renderer, never from the template text.
_LITERAL_CONTACT = re.compile(r"@|https?://|www\.", re.IGNORECASE)
# Stock phrases docs/GUIDE.md rules out; matched after normalise().
_STOCK_PHRASES = (
    "apologise for any inconvenience",
    "apologize for any inconvenience",
    "apologise for the inconvenience",
    "apologize for the inconvenience",
    "your call is important",
    "приносим извинения за доставленные неудобства",
    "приносим свои извинения за неудобства",
    "mohon maaf atas ketidaknyamanan",
    "نعتذر عن الازعاج",
)

# How "{support_channels}" reads in each language: (email and page, email only).
_CHANNELS: dict[str, tuple[str, str]] = {
    "en": ("email {email} or {url}", "email {email}"),
    "ru": ("почта {email} или страница {url}", "почта {email}"),
    "id": ("email {email} atau {url}", "email {email}"),
    "ar": ("البريد الإلكتروني {email} أو الصفحة {url}", "البريد الإلكتروني {email}"),
}


@dataclass(frozen=True)
class Variant:
    """One usable wording of a template, already rendered for one author."""

    index: int  # position in the playbook's list: part of the template id
    text: str


def template_problems(template: str, extra: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with one template variant (empty when it is fine); `extra`: placeholders of its own."""
    allowed = PLACEHOLDERS | extra
    problems = [
        f"unknown placeholder {{{name}}} (allowed: {', '.join(sorted('{' + p + '}' for p in allowed))})"
        for name in _PLACEHOLDER.findall(template)
        if name not in allowed
    ]
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        problems.append("unbalanced brace: placeholders look like {brand}")
    if _LITERAL_CONTACT.search(template):
        problems.append(
            "no handles, links or addresses in templates: the reply starts with @handle by itself; "
            "use {support_email}, {support_url} or {support_channels}"
        )
    folded = normalise(template)
    problems.extend(
        f"stock phrase {stock!r}: say what happened in your own words" for stock in _STOCK_PHRASES if stock in folded
    )
    return problems


def uses_link(template: str) -> bool:
    return "{support_url}" in template


def usable(template: str, brand: Brand, prefer_links: bool) -> bool:
    """A variant naming the help page is skipped when there is none or links are unwelcome (X)."""
    return not uses_link(template) or (brand.support_url is not None and prefer_links)


def sanitise_handle(handle: str) -> str:
    return _UNSAFE_HANDLE.sub("", handle).lstrip("@")


def support_channels(brand: Brand, lang: str, prefer_links: bool) -> str:
    with_page, email_only = _CHANNELS.get(lang, _CHANNELS["en"])
    if brand.support_url and prefer_links:
        return with_page.format(email=brand.support_email, url=brand.support_url)
    return email_only.format(email=brand.support_email)


def render(
    template: str, brand: Brand, handle: str, lang: str, prefer_links: bool, extra: Mapping[str, str] | None = None
) -> str:
    """`@handle ` followed by the template with the brand's details (and `extra` values) filled in."""
    if not usable(template, brand, prefer_links):
        raise ValueError("this variant names the help page, which is not available here")
    safe = sanitise_handle(handle)
    if not safe:
        raise ValueError("the author's handle has no usable characters")
    values = {
        "brand": brand.name,
        "support_email": brand.support_email,
        "support_url": brand.support_url or "",
        "support_channels": support_channels(brand, lang, prefer_links),
        **(extra or {}),
    }
    # A regex, not str.format: brand values with braces must not be read as format fields.
    body = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    body = _SPACES.sub(" ", body).strip()
    return f"@{safe} {body}"


def variants(
    templates: Sequence[str],
    brand: Brand,
    handle: str,
    lang: str,
    prefer_links: bool,
    extra: Mapping[str, str] | None = None,
) -> list[Variant]:
    """Every variant that can be used here, rendered, with its index in the playbook."""
    return [
        Variant(index, render(template, brand, handle, lang, prefer_links, extra))
        for index, template in enumerate(templates)
        if usable(template, brand, prefer_links)
    ]
