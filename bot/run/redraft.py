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
from bot.decide.playbooks import Playbooks
from bot.decide.router import decide
from bot.models import Action, Decision
from bot.run.context import router_context
from bot.storage import Storage
from bot.storage.records import StoredMention


class RedraftRefused(ValueError):
    """The new situation's playbook drafts no reply for this post; the message says why."""


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
    state = storage.accounts.get(stored.account)
    context = router_context(config, storage, state, mention, asked_by_person=True)
    decision = decide(mention, result, playbooks, context)
    if decision.action is not Action.REPLY or not decision.reply_text:
        raise RedraftRefused(
            f"the {situation} playbook drafts no reply for this post ({decision.reason}); "
            "reject the reply if nothing should be sent"
        )
    return decision
