"""The `alerts` table: an outbox of what the team is told.

An alert is raised once per key (the key is unique), then delivered by a job of its own: claimed with a
lease (state `sending`) before the webhook is called, so two workers never both deliver it, and marked
`delivered` afterwards, so it is never sent again. A failed delivery puts it back (`new`) for later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import ReplyState
from bot.storage.engine import Database
from bot.storage.records import AlertDue, StoredAlert, alert_record
from bot.storage.tables import alerts, mentions, replies

URGENT, WAITING = "urgent", "waiting"
CASE, ESCALATION = "case", "escalation"  # a customer wrote again in their case (bot/run/cases.py)
NEW, SENDING, DELIVERED, EXPIRED = "new", "sending", "delivered", "expired"


class Alerts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def raise_once(
        self,
        *,
        key: str,
        kind: str,
        text: str,
        at: datetime,
        account: str | None = None,
        mention_id: int | None = None,
        excerpt: str | None = None,
        since: datetime | None = None,
    ) -> bool:
        """Record an alert for the team; False (and nothing changes) if one with this key exists already."""
        try:
            with self._db.begin() as tx:
                tx.execute(
                    insert(alerts).values(
                        key=key,
                        kind=kind,
                        account=account,
                        mention_id=mention_id,
                        text=text,
                        excerpt=excerpt,
                        since=since,
                        state=NEW,
                        attempts=0,
                        created_at=at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def mention_candidates(self, *, urgent_since: datetime | None, waiting_since: datetime) -> list[AlertDue]:
        """Mentions whose alert was never raised, per reason, oldest first.

        Urgent: urgent mentions received after `urgent_since` (None: do not look for them). Waiting: a
        reply created before `waiting_since` still waits for a person.
        """
        found: list[AlertDue] = []
        columns = (
            mentions.c.id,
            mentions.c.account,
            mentions.c.platform,
            mentions.c.lang,
            mentions.c.situation,
            mentions.c.text,
            mentions.c.case_id,
        )
        with self._db.read() as db:
            if urgent_since is not None:
                rows = db.execute(
                    select(*columns, mentions.c.received_at)
                    .where(
                        mentions.c.urgent.is_(True),
                        mentions.c.action != "ignore",
                        mentions.c.received_at >= urgent_since,
                        ~_raised(URGENT),
                        # A post in a case the team is told of already ("wrote again", "escalated"): once.
                        ~_raised(CASE),
                        ~_raised(ESCALATION),
                    )
                    .order_by(mentions.c.received_at)
                ).all()
                found += [_due(row, URGENT, row.received_at) for row in rows]
            waiting = (
                select(replies.c.mention_id, replies.c.created_at)
                .where(replies.c.state.in_([ReplyState.PENDING.value, ReplyState.FAILED.value]))
                .where(replies.c.created_at <= waiting_since)
                .subquery()
            )
            rows = db.execute(
                select(*columns, waiting.c.created_at)
                .join(waiting, waiting.c.mention_id == mentions.c.id)
                .where(~_raised(WAITING))
                .order_by(waiting.c.created_at)
            ).all()
        seen: set[int] = set()
        for row in rows:
            if row.id not in seen:  # a public reply and its private follow-up are one wait
                seen.add(row.id)
                found.append(_due(row, WAITING, row.created_at))
        return found

    def claim(self, *, at: datetime, lease: timedelta, limit: int = 50) -> list[StoredAlert]:
        """Up to `limit` alerts due for delivery, now claimed by the caller (oldest first)."""
        due = (alerts.c.state == NEW) & ((alerts.c.next_attempt_at.is_(None)) | (alerts.c.next_attempt_at <= at))
        stale = (alerts.c.state == SENDING) & (alerts.c.claimed_until < at)
        with self._db.read() as db:
            ids = list(db.execute(select(alerts.c.id).where(due | stale).order_by(alerts.c.id).limit(limit)).scalars())
        claimed: list[int] = []
        with self._db.begin() as tx:
            for alert_id in ids:
                changed = tx.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id, due | stale)
                    .values(state=SENDING, claimed_until=at + lease, attempts=alerts.c.attempts + 1)
                )
                if changed.rowcount == 1:
                    claimed.append(alert_id)
            rows = tx.execute(select(alerts).where(alerts.c.id.in_(claimed)).order_by(alerts.c.id)).mappings().all()
        return [alert_record(row) for row in rows]

    def mark_delivered(self, ids: Sequence[int], at: datetime, note: str | None = None) -> None:
        self._set(ids, state=DELIVERED, delivered_at=at, claimed_until=None, last_error=note)

    def abandon(self, ids: Sequence[int], at: datetime, note: str) -> int:
        """Alerts whose delivery was cut short mid-request (a shutdown): counted as delivered, never re-sent.

        Compare-and-set on `sending`: an alert whose delivery ended meanwhile keeps what it got.
        """
        if not ids:
            return 0
        with self._db.begin() as tx:
            result = tx.execute(
                update(alerts)
                .where(alerts.c.id.in_(list(ids)), alerts.c.state == SENDING)
                .values(state=DELIVERED, delivered_at=at, claimed_until=None, last_error=note)
            )
        return int(result.rowcount)

    def release(self, ids: Sequence[int], error: str, retry_at: datetime) -> None:
        """Not delivered: try again at `retry_at`."""
        self._set(ids, state=NEW, claimed_until=None, next_attempt_at=retry_at, last_error=error)

    def expire(self, ids: Sequence[int], reason: str) -> None:
        """Never to be delivered (too old to matter by the time a webhook could take it)."""
        self._set(ids, state=EXPIRED, claimed_until=None, last_error=reason)

    def undelivered(self, kinds: Sequence[str] | None = None) -> list[StoredAlert]:
        """Alerts the team may not have seen yet (for `carebot status` and the desk), oldest first."""
        query = select(alerts).where(alerts.c.state.in_([NEW, SENDING])).order_by(alerts.c.id)
        if kinds is not None:
            query = query.where(alerts.c.kind.in_(list(kinds)))
        with self._db.read() as db:
            return [alert_record(row) for row in db.execute(query).mappings()]

    def get(self, key: str) -> StoredAlert | None:
        with self._db.read() as db:
            row = db.execute(select(alerts).where(alerts.c.key == key)).mappings().first()
        return alert_record(row) if row else None

    def _set(self, ids: Sequence[int], **values: Any) -> None:
        if not ids:
            return
        with self._db.begin() as tx:
            tx.execute(update(alerts).where(alerts.c.id.in_(list(ids))).values(**values))


def _raised(kind: str) -> Any:
    return exists().where(and_(alerts.c.mention_id == mentions.c.id, alerts.c.kind == kind))


def _due(row: Any, kind: str, since: datetime) -> AlertDue:
    return AlertDue(row.id, kind, row.account, row.platform, row.lang, row.situation, row.text, since, row.case_id)
