"""The reads the approval desk needs beyond `Storage` (figures, history, threads) and the re-draft write."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from bot.classifier import mask_personal_data
from bot.models import Decision, ReplyKind, ReplyState
from bot.records import StoredMention
from bot.schema import mentions, replies
from bot.storage import Conflict, NotFound, now

WAITING = (ReplyState.PENDING.value, ReplyState.FAILED.value)


@dataclass(frozen=True)
class Figures:
    waiting_now: int  # posts (customers) with a reply waiting for a person, not replies
    oldest_wait: timedelta | None
    answered_today: int
    median_first_response: timedelta | None


@dataclass(frozen=True)
class HistoryRow:
    reply_id: int
    state: str
    kind: str
    account: str
    platform: str
    author_handle: str
    situation: str
    lang: str
    post: str  # masked
    text: str
    decided_by: str  # "auto" or the person who wrote the text
    approved_by: str | None  # who approved (or rejected); None when it went out on its own
    rejected_reason: str | None
    when: datetime
    platform_post_id: str | None


@dataclass(frozen=True)
class ThreadPost:
    author_handle: str
    text: str  # masked
    created_at: datetime
    ours: bool  # a reply the brand sent


def utc_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(0), tzinfo=moment.tzinfo)


def figures(engine: Engine, at: datetime | None = None) -> Figures:
    at = at or now()
    midnight = utc_midnight(at)
    with engine.connect() as db:
        waiting, oldest = db.execute(
            select(func.count(func.distinct(replies.c.mention_id)), func.min(mentions.c.created_at))
            .join(mentions, mentions.c.id == replies.c.mention_id)
            .where(replies.c.state.in_(WAITING))
        ).one()
        # First response per mention: its earliest sent public reply, counted on the day it went out.
        first = (
            select(replies.c.mention_id, func.min(replies.c.sent_at).label("first_sent"))
            .where(replies.c.kind == ReplyKind.PUBLIC.value, replies.c.sent_at.is_not(None))
            .group_by(replies.c.mention_id)
            .subquery()
        )
        rows = db.execute(
            select(first.c.first_sent, mentions.c.created_at, mentions.c.received_at)
            .join(mentions, mentions.c.id == first.c.mention_id)
            .where(first.c.first_sent >= midnight)
        ).all()
    delays = [_seconds(_aware(sent) - _asked(created, received)) for sent, created, received in rows]
    oldest_at = _aware(oldest) if oldest is not None else None
    return Figures(
        waiting_now=int(waiting),
        oldest_wait=max(at - oldest_at, timedelta(0)) if oldest_at else None,
        answered_today=len(delays),
        median_first_response=timedelta(seconds=statistics.median(delays)) if delays else None,
    )


def history(
    engine: Engine, states: Sequence[str] = ("sent", "rejected"), before: int | None = None, limit: int = 50
) -> list[HistoryRow]:
    """Replies that went out or were turned down, newest first; `before` pages by reply id."""
    query = (
        select(replies, mentions.c.platform, mentions.c.author_handle, mentions.c.situation)
        .add_columns(mentions.c.lang, mentions.c.text.label("post"))
        .join(mentions, mentions.c.id == replies.c.mention_id)
        .where(replies.c.state.in_(list(states)))
        .order_by(replies.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(replies.c.id < before)
    with engine.connect() as db:
        rows = db.execute(query).mappings().all()
    return [
        HistoryRow(
            reply_id=row["id"],
            state=row["state"],
            kind=row["kind"],
            account=row["account"],
            platform=row["platform"],
            author_handle=row["author_handle"],
            situation=row["situation"],
            lang=row["lang"],
            post=mask_personal_data(row["post"]),
            text=row["text"],
            decided_by=row["decided_by"],
            approved_by=row["approved_by"],
            rejected_reason=row["rejected_reason"],
            when=_aware(row["sent_at"] or row["updated_at"]),
            platform_post_id=row["platform_post_id"],
        )
        for row in rows
    ]


def thread(engine: Engine, stored: StoredMention, limit: int = 6) -> list[ThreadPost]:
    """The earlier posts of the same conversation that carebot knows: other mentions and its own replies."""
    mention = stored.mention
    links = []
    if mention.conversation_id:
        links.append(mentions.c.conversation_id == mention.conversation_id)
    if mention.in_reply_to_id:
        links.append(mentions.c.post_id == mention.in_reply_to_id)
    if not links:
        return []
    with engine.connect() as db:
        earlier = db.execute(
            select(mentions.c.id, mentions.c.author_handle, mentions.c.text, mentions.c.created_at)
            .where(mentions.c.account == stored.account, mentions.c.id != stored.id, or_(*links))
            .where(mentions.c.created_at <= mention.created_at)
            .order_by(mentions.c.created_at.desc())
            .limit(limit)
        ).all()
        ids = [row.id for row in earlier]
        ours = db.execute(
            select(replies.c.text, replies.c.sent_at).where(
                replies.c.mention_id.in_(ids),
                replies.c.kind == ReplyKind.PUBLIC.value,
                replies.c.state == ReplyState.SENT.value,
            )
        ).all()
    posts = [ThreadPost(r.author_handle, mask_personal_data(r.text), _aware(r.created_at), False) for r in earlier]
    posts += [ThreadPost("", r.text, _aware(r.sent_at), True) for r in ours if r.sent_at is not None]
    return sorted(posts, key=lambda p: p.created_at)[-limit:]


def apply_redraft(engine: Engine, reply_id: int, expected_text: str, decision: Decision, by: str) -> None:
    """Store a re-drafted reply and the mention's new situation at once.

    Compare-and-set: only while the public reply is still pending with the text the person saw, so a
    re-draft never overwrites someone's approval or edit. The mention's private follow-up follows the new
    playbook: re-drafted, added, or (if the playbook has none) rejected.
    """
    stamp = now()
    with engine.begin() as db:
        row = db.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
        if row is None:
            raise NotFound(f"no reply {reply_id}")
        if row["kind"] != ReplyKind.PUBLIC.value:
            raise Conflict(f"reply {reply_id} is a private follow-up; change the situation on the public reply")
        changed = db.execute(
            update(replies)
            .where(
                replies.c.id == reply_id,
                replies.c.state == ReplyState.PENDING.value,
                replies.c.text == expected_text,
            )
            .values(text=decision.reply_text, template_id=decision.template_id, updated_at=stamp)
        )
        if changed.rowcount != 1:
            raise Conflict(f"reply {reply_id} changed meanwhile (now {row['state']}); look at it again")
        mention_id = row["mention_id"]
        db.execute(
            update(mentions)
            .where(mentions.c.id == mention_id)
            .values(
                situation=decision.situation,
                reason=f"situation set to {decision.situation} by {by}; {decision.reason}",
                urgent=decision.urgent,
                priority=decision.priority,
                action=decision.action.value,
            )
        )
        direct = db.execute(
            select(replies.c.id, replies.c.state).where(
                replies.c.mention_id == mention_id, replies.c.kind == ReplyKind.DIRECT.value
            )
        ).first()
        if direct is None and decision.direct_text:
            db.execute(
                insert(replies).values(
                    mention_id=mention_id,
                    account=row["account"],
                    kind=ReplyKind.DIRECT.value,
                    text=decision.direct_text,
                    template_id=decision.template_id,
                    state=ReplyState.PENDING.value,
                    idempotency_key=f"carebot-{uuid.uuid4()}",
                    attempts=0,
                    reworded=False,
                    decided_by="auto",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        elif direct is not None and direct.state == ReplyState.PENDING.value:
            values = (
                {"text": decision.direct_text}
                if decision.direct_text
                else {
                    "state": ReplyState.REJECTED.value,
                    "approved_by": by,
                    "rejected_reason": f"situation changed to {decision.situation}: no private follow-up",
                }
            )
            db.execute(
                update(replies)
                .where(and_(replies.c.id == direct.id, replies.c.state == ReplyState.PENDING.value))
                .values(updated_at=stamp, **values)
            )


def _asked(created: datetime, received: datetime) -> datetime:
    """When the customer started waiting: when they posted (never later than when we saw it)."""
    return min(_aware(created), _aware(received))


def _aware(value: datetime) -> datetime:
    # UTCDateTime gives aware values; aggregates (min) bypass the column type on SQLite.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)
