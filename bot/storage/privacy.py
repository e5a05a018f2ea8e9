"""People's data over time: texts masked or erased after `storage.retention`, one person erased on request
(`carebot forget`), and the `audit` table that records both without the data.

Erasing keeps a tombstone of each post (its account and platform id, no text, no author): the unique
`(account, post_id)` is what keeps a post that is read again from being answered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from bot.clock import now
from bot.models import ReplyKind, ReplyState
from bot.storage.engine import Database
from bot.storage.errors import Conflict
from bot.storage.tables import (
    alerts,
    audit,
    case_events,
    cases,
    decisions,
    incident_events,
    mention_topics,
    mentions,
    opt_outs,
    quarantine,
    replies,
)

MASKED, ERASED = "masked", "erased"
# Our replies whose words are settled: erasing or masking them changes nothing that is still to be sent.
SETTLED = (ReplyState.SENT.value, ReplyState.REJECTED.value, ReplyState.DRAFTED.value)
UNSENT = (ReplyState.PENDING.value, ReplyState.APPROVED.value, ReplyState.FAILED.value, ReplyState.DRAFTED.value)


@dataclass(frozen=True)
class DueText:
    """A stored post past its retention, and its text."""

    id: int
    private: bool  # a direct message (erased) rather than a public post (masked)
    text: str


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: datetime
    actor: str
    action: str
    detail: str


@dataclass
class Erased:
    """What `forget` found (and, unless it was a dry run, erased)."""

    posts: int = 0
    replies: int = 0
    cancelled: int = 0  # replies not sent yet, now never sent
    cases: int = 0
    decisions: int = 0
    set_aside: int = 0
    alerts: int = 0
    platforms: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not (self.posts or self.cases or self.set_aside):
            return "nothing was stored of that person"
        unsent = f" ({self.cancelled} of them not sent yet, now never sent)" if self.cancelled else ""
        counts = [
            _counted(self.posts, "post"),
            _counted(self.replies, "reply", "replies") + unsent,
            _counted(self.cases, "case"),
            _counted(self.decisions, "team decision"),
            _counted(self.set_aside, "set-aside post"),
            _counted(self.alerts, "alert"),
        ]
        return ", ".join(counts)


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


class Privacy:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- retention --------------------------------------------------------------------------------

    def due_texts(self, before: datetime, limit: int = 500) -> list[DueText]:
        """Posts received before `before` whose text is not masked or erased yet, oldest first."""
        with self._db.read() as db:
            posts = db.execute(
                select(mentions.c.id, mentions.c.visibility, mentions.c.text)
                .where(mentions.c.received_at < before, mentions.c.redacted.is_(None))
                .order_by(mentions.c.id)
                .limit(limit)
            ).all()
        return [DueText(r.id, r.visibility == "direct", r.text) for r in posts]

    def apply_retention(self, before: datetime, texts: Sequence[tuple[DueText, str]], retention: str) -> int:
        """Store the masked (or erased) post texts; also erase our private messages, and the excerpts of
        alerts and set-aside posts, older than `before`. How many rows changed; one audit line if any did.
        (The team's own notes in cases are kept.)"""
        changed = 0
        with self._db.begin() as tx:
            for item, new_text in texts:
                changed += tx.execute(
                    update(mentions)
                    .where(mentions.c.id == item.id, mentions.c.redacted.is_(None))
                    .values(text=new_text, personal_data=[], redacted=ERASED if item.private else MASKED)
                ).rowcount
            changed += tx.execute(
                update(replies)
                .where(
                    replies.c.kind == ReplyKind.DIRECT.value,
                    replies.c.state.in_(SETTLED),
                    replies.c.created_at < before,
                    replies.c.text != "",
                )
                .values(text="")
            ).rowcount
            changed += tx.execute(
                update(alerts).where(alerts.c.created_at < before, alerts.c.excerpt.is_not(None)).values(excerpt=None)
            ).rowcount
            changed += tx.execute(
                update(quarantine)
                .where(
                    quarantine.c.created_at < before, or_(quarantine.c.excerpt != "", quarantine.c.author_handle != "")
                )
                .values(excerpt="", author_handle="")
            ).rowcount
            if changed:
                _audit(tx, "carebot", "retention", f"{changed} stored texts older than {retention} masked or erased")
        return changed

    # --- one person, on request -------------------------------------------------------------------

    def forget(self, handle: str, by: str, platform: str | None = None, apply: bool = True) -> Erased:
        """Erase everything stored of the author with this handle (any account; on `platform` only, if
        given): their posts' texts and their identity on them, our replies to them, their cases and
        their history, the team's decisions about their posts, alerts and set-aside posts.

        Their posts stay as tombstones (so they are never answered twice) and an opt-out stays, without
        their handle. Conflict if a reply to them is being sent at this very moment. `apply=False` only
        counts. One audit line, without the handle.
        """
        wanted = handle.strip().lstrip("@").lower()
        if not wanted:
            raise ValueError("no handle given")
        report = Erased()
        with self._db.begin() as tx:
            who = _authors(tx, wanted, platform)
            mention_ids = _ids(tx, select(mentions.c.id).where(_by(mentions, who)))
            case_ids = _ids(tx, select(cases.c.id).where(_by(cases, who)))
            reply_rows = tx.execute(
                select(replies.c.id, replies.c.state).where(
                    or_(replies.c.mention_id.in_(mention_ids), replies.c.case_id.in_(case_ids))
                )
            ).all()
            if any(row.state == ReplyState.SENDING.value for row in reply_rows):
                raise Conflict("a reply to them is being sent right now: try again in a minute")
            reply_ids = [row.id for row in reply_rows]
            report.platforms = sorted({p for p, _ in who})
            report.posts = len(mention_ids)
            report.replies = len(reply_ids)
            report.cancelled = sum(1 for row in reply_rows if row.state in UNSENT)
            report.cases = len(case_ids)
            report.decisions = _count(tx, decisions, decisions.c.mention_id.in_(mention_ids))
            set_aside = func.lower(quarantine.c.author_handle) == wanted
            if platform is not None:
                set_aside &= quarantine.c.platform == platform
            report.set_aside = _count(tx, quarantine, set_aside)
            about: Any = alerts.c.mention_id.in_(mention_ids)
            for case_id in case_ids:  # the case's own alerts name no post
                about = about | alerts.c.key.like(f"case:{case_id}:%") | alerts.c.key.like(f"target:{case_id}:%")
            report.alerts = _count(tx, alerts, about)
            if not apply:
                return report
            stamp = now()
            tx.execute(
                update(replies)
                .where(replies.c.id.in_(reply_ids), replies.c.state.in_(UNSENT))
                .values(
                    state=ReplyState.REJECTED.value,
                    approved_by=by,
                    rejected_reason="erased on request (carebot forget)",
                    next_attempt_at=None,
                    updated_at=stamp,
                )
            )
            tx.execute(update(replies).where(replies.c.id.in_(reply_ids)).values(text="", case_id=None))
            tx.execute(delete(decisions).where(decisions.c.mention_id.in_(mention_ids)))
            tx.execute(delete(alerts).where(about))
            tx.execute(delete(mention_topics).where(mention_topics.c.mention_id.in_(mention_ids)))
            tx.execute(update(incident_events).where(incident_events.c.case_id.in_(case_ids)).values(case_id=None))
            tx.execute(delete(case_events).where(case_events.c.case_id.in_(case_ids)))
            tx.execute(update(mentions).where(mentions.c.case_id.in_(case_ids)).values(case_id=None))
            tx.execute(update(replies).where(replies.c.case_id.in_(case_ids)).values(case_id=None))
            tx.execute(delete(cases).where(cases.c.id.in_(case_ids)))
            tx.execute(
                update(mentions)
                .where(mentions.c.id.in_(mention_ids))
                .values(
                    text="",
                    url=None,
                    author_id="",
                    author_handle="",
                    author_name="",
                    personal_data=[],
                    reason="erased on request",
                    redacted=ERASED,
                )
            )
            tx.execute(delete(quarantine).where(set_aside))
            for found_platform, author_id in who:
                tx.execute(
                    update(opt_outs)
                    .where(opt_outs.c.platform == found_platform, opt_outs.c.author_id == author_id)
                    .values(author_handle="")
                )
            where = f" on {platform}" if platform else ""
            # Kept even when nothing was found: the request was made, and answered.
            _audit(tx, by, "forget", f"an erasure request{where}: {report.summary()}")
        return report

    def audit_lines(self, limit: int = 50) -> list[AuditLine]:
        with self._db.read() as db:
            rows = db.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).mappings().all()
        return [AuditLine(r["id"], r["at"], r["actor"], r["action"], r["detail"]) for r in rows]


def _audit(tx: Connection, actor: str, action: str, detail: str) -> None:
    tx.execute(insert(audit).values(at=now(), actor=actor, action=action, detail=detail))


def _authors(tx: Connection, handle: str, platform: str | None) -> list[tuple[str, str]]:
    """(platform, author id) of everyone who posted, or has a case, under this handle."""
    found: set[tuple[str, str]] = set()
    for table in (mentions, cases):
        query = select(table.c.platform, table.c.author_id).where(func.lower(table.c.author_handle) == handle)
        if platform is not None:
            query = query.where(table.c.platform == platform)
        found |= {(row.platform, row.author_id) for row in tx.execute(query.distinct())}
    return sorted((p, a) for p, a in found if a)


def _by(table: Any, who: list[tuple[str, str]]) -> Any:
    if not who:
        return table.c.id.is_(None)  # nobody: no row
    return or_(*[(table.c.platform == p) & (table.c.author_id == a) for p, a in who])


def _ids(tx: Connection, query: Any) -> list[int]:
    return [int(row[0]) for row in tx.execute(query)]


def _count(tx: Connection, table: Any, condition: Any) -> int:
    return int(tx.execute(select(func.count()).select_from(table).where(condition)).scalar_one())
