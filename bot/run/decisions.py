"""The team's decisions as training data: recorded when a person approves, re-routes or rejects a reply,
read back by `carebot train --with-decisions` and `carebot eval --decisions`.

A decision is one labelled post of this brand's own audience: approved unchanged (the situation was
right), re-routed to another situation (the label corrected), rejected as trolling. The text is masked
before it is stored.
"""

from __future__ import annotations

from bot.classifier import mask_personal_data
from bot.classifier.decisions import CONFIRMED, CORRECTED, REJECTED
from bot.classifier.examples import Example
from bot.clock import now
from bot.config import Config
from bot.models import ReplyPurpose
from bot.storage import Storage
from bot.storage.records import StoredMention

__all__ = ["CONFIRMED", "CORRECTED", "REJECTED", "labelled_decisions", "record_decision", "record_on_reply"]


def record_decision(storage: Storage, stored: StoredMention, source: str, by: str, label: str | None = None) -> None:
    """Keep a person's verdict on `stored`: its current situation, or `label`."""
    storage.decisions.add(
        account=stored.account,
        mention_id=stored.id,
        lang=stored.lang,
        label=label or stored.situation,
        source=source,
        text=mask_personal_data(stored.mention.text),
        by=by,
        at=now(),
    )


def record_on_reply(storage: Storage, reply_id: int, source: str, by: str, label: str | None = None) -> None:
    """Keep the verdict a person gave by acting on the bot's answer `reply_id` (other replies say nothing
    about the classifier's reading)."""
    reply = storage.replies.get(reply_id)
    if reply.purpose == ReplyPurpose.ANSWER.value:
        record_decision(storage, storage.mentions.get(reply.mention_id), source, by, label)


def labelled_decisions(config: Config) -> list[Example]:
    """Every decision kept in the config's database, oldest first, as labelled examples."""
    storage = Storage.open(config.storage.url)
    try:
        return [
            Example(text=d.text, label=d.label, lang=d.lang, id=f"decision-{d.id}", source=d.source)
            for d in storage.decisions.all()
        ]
    finally:
        storage.close()
