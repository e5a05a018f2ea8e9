"""What a decision needs to know beyond the post: the brand as this platform sees it, the account's post
length limit, and what the bot already said to the author. Built the same way for a new mention, a
reworded reply and a person's re-draft."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bot.config import Brand, Config
from bot.decide.router import Context
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


def check_length(config: Config, storage: Storage, reply_id: int, text: str) -> None:
    """ValueError if `text` is empty or longer than the platform of that reply allows."""
    reply = storage.replies.get(reply_id)
    state = storage.accounts.get(reply.account)
    check_text(storage, reply.account, state.platform if state else config.account(reply.account).platform, text)


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
