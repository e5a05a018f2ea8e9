"""Counts and timings over mentions and replies: the desk's figures and each account's activity."""

from __future__ import annotations

import statistics
from collections.abc import Collection
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, true

from bot.clock import as_utc, now
from bot.models import UNPROMPTED, ReplyKind, ReplyState
from bot.storage.engine import Database
from bot.storage.records import Activity, DeskFigures
from bot.storage.tables import mentions, quarantine, replies

WAITING = (ReplyState.PENDING.value, ReplyState.FAILED.value)


class Figures:
    def __init__(self, db: Database) -> None:
        self._db = db

    def desk(self, at: datetime | None = None, accounts: Collection[str] | None = None) -> DeskFigures:
        """Posts waiting for a person now, the oldest wait, and today's first responses (UTC day), of all
        accounts or of `accounts` only."""
        at = at or now()
        midnight = datetime.combine(at.date(), time(0), tzinfo=at.tzinfo)
        mine = replies.c.account.in_(list(accounts)) if accounts is not None else true()
        with self._db.read() as db:
            waiting, oldest = db.execute(
                select(func.count(func.distinct(replies.c.mention_id)), func.min(_waiting_since()))
                .join(mentions, mentions.c.id == replies.c.mention_id)
                .where(replies.c.state.in_(WAITING), mine)
            ).one()
            # First response per mention: its earliest sent public reply, counted on the day it went out. Only
            # mentions answered today can have a first response today: the index on sent_at finds them.
            today = select(replies.c.mention_id).where(replies.c.sent_at >= midnight)
            first = (
                select(replies.c.mention_id, func.min(replies.c.sent_at).label("first_sent"))
                .where(replies.c.kind == ReplyKind.PUBLIC.value, replies.c.sent_at.is_not(None), mine)
                .where(replies.c.mention_id.in_(today))
                .group_by(replies.c.mention_id)
                .subquery()
            )
            rows = db.execute(
                select(first.c.first_sent, mentions.c.created_at, mentions.c.received_at)
                .join(mentions, mentions.c.id == first.c.mention_id)
                .where(first.c.first_sent >= midnight)
            ).all()
            set_aside = int(db.execute(select(func.count()).select_from(quarantine)).scalar_one())
        # Aggregates (min) bypass the column type on SQLite: as_utc reads them either way.
        delays = [_seconds(as_utc(sent) - _asked(created, received)) for sent, created, received in rows]
        oldest_at = as_utc(oldest) if oldest is not None else None
        return DeskFigures(
            waiting_now=int(waiting),
            oldest_wait=max(at - oldest_at, timedelta(0)) if oldest_at else None,
            answered_today=len(delays),
            median_first_response=timedelta(seconds=statistics.median(delays)) if delays else None,
            set_aside=set_aside,
        )

    def waiting_by_account(self) -> dict[str, tuple[int, datetime | None]]:
        """Per account: posts with a reply waiting for a person, and when the longest-waiting was posted."""
        with self._db.read() as db:
            rows = db.execute(
                select(replies.c.account, func.count(func.distinct(replies.c.mention_id)), func.min(_waiting_since()))
                .join(mentions, mentions.c.id == replies.c.mention_id)
                .where(replies.c.state.in_(WAITING))
                .group_by(replies.c.account)
            ).all()
        return {account: (int(n), as_utc(oldest) if oldest is not None else None) for account, n, oldest in rows}

    def activity(self, account: str) -> Activity:
        with self._db.read() as db:
            stored = db.execute(
                select(func.count()).select_from(mentions).where(mentions.c.account == account)
            ).scalar_one()
            by_state = db.execute(
                select(replies.c.state, func.count()).where(replies.c.account == account).group_by(replies.c.state)
            ).all()
        return Activity(mentions=int(stored), replies_by_state={state: int(n) for state, n in by_state})


def _waiting_since() -> ColumnElement[Any]:
    """Since when a waiting reply waits: its customer's post, or itself if we send it of our own accord (a
    check-back is queued a day after the post, by design: it is no customer waiting a day)."""
    return case((replies.c.purpose.in_(sorted(UNPROMPTED)), replies.c.created_at), else_=mentions.c.created_at)


def _asked(created: datetime, received: datetime) -> datetime:
    """When the customer started waiting: when they posted (never later than when we saw it)."""
    return min(as_utc(created), as_utc(received))


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)
