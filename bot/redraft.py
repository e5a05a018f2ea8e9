"""Draft a reply again from another situation's playbook, when a person says the classifier got it wrong.

The post is classified again (same text, same language and signals) and only the situation is replaced; the
router then decides exactly as it would have for a post of that situation. A person asked for this draft,
so the classifier's doubt and the bot-loop limit do not apply; every other guard (opt-out, the brand's own
post, bots) still does.
"""

from __future__ import annotations

import dataclasses

from bot.classifier import Classifier
from bot.config import Config
from bot.models import Action, Decision
from bot.playbooks import Playbooks
from bot.records import StoredMention
from bot.router import Context, decide
from bot.storage import Storage
from connectors import get_platform


class RedraftRefused(ValueError):
    """The new situation's playbook drafts no reply for this post; the message says why."""


def platform_limit(storage: Storage, account: str, platform_name: str) -> int:
    """The account's post length limit as the platform last reported it, else the platform default."""
    state = storage.account_state(account)
    return (state.max_characters if state else None) or get_platform(platform_name).max_characters


def redraft(
    stored: StoredMention,
    situation: str,
    *,
    storage: Storage,
    classifier: Classifier,
    playbooks: Playbooks,
    config: Config,
) -> Decision:
    """The decision the `situation` playbook makes for this post; RedraftRefused if it says nothing."""
    if situation not in playbooks.by_situation:
        raise RedraftRefused(f"there is no playbook for {situation!r}")
    mention = stored.mention
    result = classifier.classify(mention.text, default_lang=config.brand.default_language)
    result = dataclasses.replace(result, situation=situation, confidence=1.0)
    decision = decide(mention, result, playbooks, _context(stored, storage, config))
    if decision.action is not Action.REPLY or not decision.reply_text:
        raise RedraftRefused(
            f"the {situation} playbook drafts no reply for this post ({decision.reason}); "
            "reject the reply if nothing should be sent"
        )
    return decision


def _context(stored: StoredMention, storage: Storage, config: Config) -> Context:
    platform = get_platform(stored.mention.platform)
    state = storage.account_state(stored.account)
    brand = config.brand
    if state and state.own_handle and state.own_handle.lower() not in brand.handles:
        brand = dataclasses.replace(brand, handles=(*brand.handles, state.own_handle.lower()))
    history = storage.author_history(stored.mention.platform, stored.mention.author.id)
    return Context(
        brand=brand,
        platform=platform.name,
        max_characters=platform_limit(storage, stored.account, platform.name),
        text_length=platform.count_text or len,
        min_confidence=config.min_confidence,
        allow_direct=platform.automated_direct_messages,
        prefer_links=platform.links_in_replies,
        own_account_ids=frozenset({state.own_id}) if state and state.own_id else frozenset(),
        author_opted_out=history.opted_out,
        recent_replies_to_author=0,  # a person asked for this draft: the bot-loop limit is not theirs
        max_replies_per_author_hour=config.daemon.max_replies_per_author_hour,
        last_template_for_author=history.last_template_id,
    )
