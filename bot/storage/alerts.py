"""The `notifications` table: which mentions the team was already told about, and for what.

An alert is claimed (its row inserted) before the message is sent, so two daemons never both send it,
and released (the row deleted) if sending fails, so a later check tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from bot.models import ReplyState
from bot.storage.engine import Database
from bot.storage.records import AlertDue
from bot.storage.tables import mentions, notifications, replies

URGENT, WAITING = "urgent", "waiting"


class Alerts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def due(self, *, urgent_since: datetime | None, waiting_since: datetime) -> list[AlertDue]:
        """Mentions the team has not yet been told about, per reason, oldest first.

        Urgent: urgent mentions received after `urgent_since` (None: do not look for them). Waiting: a
        reply created before `waiting_since` still waits for a person.
        """
        alerts: list[AlertDue] = []
        columns = (
            mentions.c.id,
            mentions.c.account,
            mentions.c.platform,
            mentions.c.lang,
            mentions.c.situation,
            mentions.c.text,
        )
        with self._db.read() as db:
            if urgent_since is not None:
                rows = db.execute(
                    select(*columns, mentions.c.received_at)
                    .where(
                        mentions.c.urgent.is_(True),
                        mentions.c.action != "ignore",
                        mentions.c.received_at >= urgent_since,
                        ~_told(URGENT),
                    )
                    .order_by(mentions.c.received_at)
                ).all()
                alerts += [_due(row, URGENT, row.received_at) for row in rows]
            waiting = (
                select(replies.c.mention_id, replies.c.created_at)
                .where(replies.c.state.in_([ReplyState.PENDING.value, ReplyState.FAILED.value]))
                .where(replies.c.created_at <= waiting_since)
                .subquery()
            )
            rows = db.execute(
                select(*columns, waiting.c.created_at)
                .join(waiting, waiting.c.mention_id == mentions.c.id)
                .where(~_told(WAITING))
                .order_by(waiting.c.created_at)
            ).all()
        seen: set[int] = set()
        for row in rows:
            if row.id not in seen:  # a public reply and its private follow-up are one wait
                seen.add(row.id)
                alerts.append(_due(row, WAITING, row.created_at))
        return alerts

    def claim(self, alerts: Sequence[AlertDue], at: datetime) -> list[AlertDue]:
        """The alerts this process is first to record; another worker may have taken some."""
        claimed: list[AlertDue] = []
        with self._db.begin() as tx:
            for alert in alerts:
                try:
                    with tx.begin_nested():
                        tx.execute(
                            insert(notifications).values(mention_id=alert.mention_id, kind=alert.kind, created_at=at)
                        )
                except IntegrityError:
                    continue
                claimed.append(alert)
        return claimed

    def release(self, alerts: Sequence[AlertDue]) -> None:
        """Forget that these were told (their message failed): a later check tells them again."""
        with self._db.begin() as tx:
            for alert in alerts:
                tx.execute(
                    delete(notifications).where(
                        notifications.c.mention_id == alert.mention_id, notifications.c.kind == alert.kind
                    )
                )


def _told(kind: str) -> Any:
    return exists().where(and_(notifications.c.mention_id == mentions.c.id, notifications.c.kind == kind))


def _due(row: Any, kind: str, since: datetime) -> AlertDue:
    return AlertDue(row.id, kind, row.account, row.platform, row.lang, row.situation, row.text, since)
