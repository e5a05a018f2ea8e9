"""What the team should be told, written to the alert outbox (`storage.alerts`), once per key.

Raising an alert is a database write and nothing more: the cycle never waits on a webhook. A job of its
own (`bot.run.notify.deliver_alerts`) tells the team. Alert texts never carry personal data: posts are
masked and shortened, authors are not named.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.classifier import mask_personal_data
from bot.clock import now
from bot.config import Config
from bot.storage import Storage

URGENT_WINDOW = timedelta(hours=1)  # older urgent posts were there before alerts were switched on
EXCERPT = 100  # characters of the (masked) post shown per item


def raise_alert(
    storage: Storage,
    *,
    key: str,
    kind: str,
    account: str | None,
    text: str,
    at: datetime | None = None,
    mention_id: int | None = None,
) -> bool:
    """Record an alert for the team once per `key` (about one post: `mention_id`); False if it was raised
    before (nothing changes)."""
    return storage.alerts.raise_once(
        key=key, kind=kind, account=account, text=text, at=at or now(), mention_id=mention_id
    )


def raise_mention_alerts(storage: Storage, config: Config, at: datetime | None = None) -> int:
    """Raise an alert for each urgent complaint just arrived and each reply waiting too long for a person.

    Only with a webhook to deliver them: otherwise nobody would be told, and a webhook configured later
    would get a flood of old news.
    """
    settings = config.notify
    if not settings.webhook_url:
        return 0
    at = at or now()
    raised = 0
    due = storage.alerts.mention_candidates(
        urgent_since=at - URGENT_WINDOW if settings.urgent else None,
        waiting_since=at - timedelta(seconds=settings.wait_threshold),
    )
    for item in due:
        raised += storage.alerts.raise_once(
            key=f"{item.kind}:{item.mention_id}",
            kind=item.kind,
            account=item.account,
            mention_id=item.mention_id,
            # The case (or the queue) is where a person acts on it: named, so nobody has to search.
            text=f"{f'case #{item.case_id}, ' if item.case_id else ''}{item.account} ({item.platform}, {item.lang}, "
            f"{item.situation})",
            excerpt=excerpt(item.text),
            since=item.since,
            at=at,
        )
    return raised


def excerpt(text: str) -> str:
    """The post masked, on one line, at most EXCERPT characters."""
    post = " ".join(mask_personal_data(text).split())
    return post if len(post) <= EXCERPT else post[: EXCERPT - 1].rstrip() + "…"
