"""What a decision needs to know beyond the post: the brand as this platform sees it, the account's post
length limit, and what the bot already said to the author. Built the same way for a new mention, a
reworded reply and a person's re-draft."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from bot.config import Brand, Config
from bot.decide.router import Context
from bot.models import ReplyKind
from bot.storage import Storage
from bot.storage.records import AccountState
from connectors import get_platform
from connectors.base import Mention, Platform


def post_limit(state: AccountState | None, platform: Platform) -> int:
    """The account's post length limit as the platform last reported it, else the platform's default."""
    return (state.max_characters if state else None) or platform.max_characters


def text_length(platform: Platform) -> Callable[[str], int]:
    return platform.count_text or len


def brand_for(brand: Brand, state: AccountState | None) -> Brand:
    """The brand with this account's own handle among its handles (the platform told us who we are)."""
    handle = state.own_handle.lower() if state and state.own_handle else None
    if handle is None or handle in brand.handles:
        return brand
    return dataclasses.replace(brand, handles=(*brand.handles, handle))


def router_context(
    config: Config,
    storage: Storage,
    state: AccountState | None,
    mention: Mention,
    *,
    measure: Callable[[str], int] | None = None,
    ignored_author_ids: frozenset[str] = frozenset(),
    last_template: str | None = None,
    asked_by_person: bool = False,
) -> Context:
    """The router's context for `mention` on the account whose stored state is `state`.

    `asked_by_person`: a person asked for this draft, so the per-author hourly limit (a guard against bot
    loops) is not theirs to hit.
    """
    platform = get_platform(mention.platform)
    history = storage.mentions.author_history(mention.platform, mention.author.id)
    return Context(
        brand=brand_for(config.brand, state),
        platform=platform.name,
        max_characters=post_limit(state, platform),
        text_length=measure or text_length(platform),
        min_confidence=config.classifier.min_confidence,
        allow_direct=platform.automated_direct_messages,
        prefer_links=platform.links_in_replies,
        own_account_ids=frozenset({state.own_id}) if state and state.own_id else frozenset(),
        ignored_author_ids=ignored_author_ids,
        author_opted_out=history.opted_out,
        recent_replies_to_author=0 if asked_by_person else history.replies_last_hour,
        max_replies_per_author_hour=config.daemon.max_replies_per_author_hour,
        last_template_for_author=last_template or history.last_template_id,
        valid_handle=platform.valid_handle,
    )


def check_edit(config: Config, storage: Storage, reply_id: int, text: str) -> None:
    """A person's words for reply `reply_id`: ValueError if empty or longer than its platform allows, or
    if, as a public reply, they repeat personal data (`check_public_words`)."""
    reply = storage.replies.get(reply_id)
    state = storage.accounts.get(reply.account)
    check_text(storage, reply.account, state.platform if state else config.account(reply.account).platform, text)
    if reply.kind is ReplyKind.PUBLIC:
        posts = storage.cases.posts(reply.case_id) if reply.case_id is not None else []
        written = [m.mention.text for m in posts] or [storage.mentions.get(reply.mention_id).mention.text]
        check_public_words(config.brand, text, written)


# Kinds that are personal wherever they come from; the others (a phone number, an order number, an address)
# may be the brand's own, and are refused when they repeat what the customer wrote.
_ALWAYS_PERSONAL = frozenset({"card", "iban"})
_NAMES = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "card": "a card number",
    "iban": "an account number",
    "id_number": "an ID number",
    "order": "an order number",
    "address": "an address",
    "number": "a number the customer wrote",
}


def check_public_words(brand: Brand, text: str, customer_wrote: Sequence[str]) -> None:
    """ValueError if a person's words for a public reply repeat personal data (docs/GUIDE.md, principle 3):
    a card or account number, an e-mail address other than the brand's own, or a number or address the
    customer wrote. The same words may go privately."""
    theirs = {_key(value) for post in customer_wrote for value in _personal_values(post)}
    found = {
        kind
        for kind, value in _personal_spans(text)
        if kind in _ALWAYS_PERSONAL
        or (kind == "email" and value.casefold() != brand.support_email.casefold())
        or _key(value) in theirs
    }
    # A number too short to look like personal data on its own ("card ending 4242", "order 88 123") is
    # still theirs when they wrote it, perhaps only privately.
    their_numbers = {number for post in customer_wrote for number in _numbers(post)}
    if not found and their_numbers & set(_numbers(text)):
        found.add("number")
    if found:
        what = ", ".join(_NAMES.get(kind, kind) for kind in sorted(found))
        raise ValueError(f"a public reply must not repeat personal data ({what}): send it privately, or leave it out")


def _personal_spans(text: str) -> list[tuple[str, str]]:
    from bot import classifier

    return [(span.kind, text[span.start : span.end]) for span in classifier.find_personal_data(text)]


def _personal_values(text: str) -> list[str]:
    return [value for _kind, value in _personal_spans(text)]


_NUMBER = re.compile(r"\d(?:[\d -]*\d)?")


def _numbers(text: str) -> list[str]:
    """Runs of 4 or more digits, written with or without spaces and dashes, as digits alone."""
    return [digits for digits in map(_digits, _NUMBER.findall(text)) if len(digits) >= 4]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _key(value: str) -> str:
    """The same datum however it is written: digits alone for a number, folded words otherwise."""
    digits = _digits(value)
    return digits if len(digits) >= 4 else " ".join(value.casefold().split())


def check_text(storage: Storage, account: str, platform_name: str, text: str) -> None:
    """ValueError if `text` is empty or longer than `account`'s platform allows."""
    if not text.strip():
        raise ValueError("the reply text is empty")
    platform = get_platform(platform_name)
    limit = post_limit(storage.accounts.get(account), platform)
    length = text_length(platform)(text)
    if length > limit:
        raise ValueError(f"the reply is {length} characters; {platform.name} allows {limit}")


def cost_warning(config: Config, account_name: str, text: str) -> str | None:
    """Why `text` must not go out as a reply of that account without a person's explicit yes on its platform
    (on X: it carries a link, and what that costs), or None."""
    account = config.account(account_name)
    warn = get_platform(account.platform).reply_warning
    return warn(text, account.options) if warn is not None else None
