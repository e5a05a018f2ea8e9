"""The `cases` and `case_events` tables: a customer's problem, its state, its timers and its history.

State changes are compare-and-set on the state they start from, so two people (or a person and the
daemon) acting on one case at once cannot both win. A reply of a case is created once per `dedupe_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.clock import as_utc, now
from bot.models import OPEN_STATES, CaseState, ReplyKind, ReplyPurpose, ReplyState
from bot.storage.engine import Database
from bot.storage.errors import Conflict, NotFound
from bot.storage.records import (
    CaseEvent,
    StoredCase,
    StoredMention,
    StoredReply,
    case_event_record,
    case_record,
    mention_record,
    reply_record,
)
from bot.storage.replies import insert_reply, mark_sent
from bot.storage.tables import case_events, cases, mentions, replies
from connectors.base import Mention

ACTIVE = (CaseState.OPEN.value, CaseState.WAITING_ON_US.value, CaseState.WAITING_ON_CUSTOMER.value)


@dataclass(frozen=True)
class Match:
    """The case a new post joins, and why (one line for the case's history)."""

    case: StoredCase
    reason: str


class Cases:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reading ---------------------------------------------------------------------------------

    def get(self, case_id: int) -> StoredCase:
        with self._db.read() as db:
            row = db.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
        if row is None:
            raise NotFound(f"no case {case_id}")
        return case_record(row)

    def listed(
        self, states: Sequence[str] | None = None, account: str | None = None, limit: int = 200
    ) -> list[StoredCase]:
        """Cases, those waiting on us and urgent first, then the longest waiting."""
        query = select(cases)
        if states:
            query = query.where(cases.c.state.in_(list(states)))
        if account is not None:
            query = query.where(cases.c.account == account)
        waiting_first = (cases.c.state == CaseState.WAITING_ON_US.value) | (cases.c.state == CaseState.OPEN.value)
        query = query.order_by(
            waiting_first.desc(),
            cases.c.escalated.desc(),
            cases.c.urgent.desc(),
            cases.c.priority.desc(),
            cases.c.last_customer_at,
        ).limit(limit)
        with self._db.read() as db:
            return [case_record(row) for row in db.execute(query).mappings()]

    def events(self, case_id: int) -> list[CaseEvent]:
        with self._db.read() as db:
            rows = db.execute(
                select(case_events).where(case_events.c.case_id == case_id).order_by(case_events.c.id)
            ).mappings()
            return [case_event_record(row) for row in rows]

    def posts(self, case_id: int) -> list[StoredMention]:
        """The customer's posts in the case, oldest first."""
        with self._db.read() as db:
            rows = db.execute(select(mentions).where(mentions.c.case_id == case_id).order_by(mentions.c.id)).mappings()
            return [mention_record(row) for row in rows]

    def replies(self, case_id: int) -> list[StoredReply]:
        """Every reply of the case (the bot's and the team's), oldest first."""
        with self._db.read() as db:
            rows = db.execute(select(replies).where(replies.c.case_id == case_id).order_by(replies.c.id)).mappings()
            return [reply_record(row) for row in rows]

    def reply_with_key(self, dedupe_key: str) -> StoredReply | None:
        """The reply `add_reply` made for this `dedupe_key`, if any."""
        with self._db.read() as db:
            row = db.execute(select(replies).where(replies.c.dedupe_key == dedupe_key)).mappings().first()
        return reply_record(row) if row is not None else None

    def find_for(self, account: str, mention: Mention, *, window: timedelta, at: datetime) -> Match | None:
        """The case this post joins: it answers a post of the case (ours or theirs), or is in one of its
        conversations, or its author wrote within `window` while the team works on their case (open, waiting
        on us, or waiting on them after a person answered). The most recent wins.

        A closed case takes nothing new: the post opens a new case.
        """
        found: dict[int, str] = {}
        with self._db.read() as db:
            if mention.in_reply_to_id:
                target = mention.in_reply_to_id
                theirs = db.execute(
                    select(mentions.c.case_id).where(mentions.c.account == account, mentions.c.post_id == target)
                ).scalar()
                ours = db.execute(
                    select(replies.c.case_id).where(replies.c.account == account, replies.c.platform_post_id == target)
                ).scalar()
                for case_id in (theirs, ours):
                    if case_id is not None:
                        found.setdefault(case_id, f"answers post {target} of the case")
            if mention.conversation_id:
                case_id = db.execute(
                    select(mentions.c.case_id)
                    .where(
                        mentions.c.account == account,
                        mentions.c.conversation_id == mention.conversation_id,
                        mentions.c.case_id.is_not(None),
                    )
                    .order_by(mentions.c.id.desc())
                    .limit(1)
                ).scalar()
                if case_id is not None:
                    found.setdefault(case_id, "in the same conversation")
            same_author = db.execute(
                select(cases.c.id)
                .where(
                    cases.c.account == account,
                    cases.c.author_id == mention.author.id,
                    # A case the team works on, or in which a person answered and waits for the customer (their
                    # "thanks, it works now" as a new post opened a new case); one the bot answered in full (a
                    # question, a thank-you) does not take the author's next, unrelated post.
                    or_(
                        cases.c.state.in_([CaseState.OPEN.value, CaseState.WAITING_ON_US.value]),
                        and_(
                            cases.c.state == CaseState.WAITING_ON_CUSTOMER.value,
                            cases.c.first_human_response_at.is_not(None),
                        ),
                    ),
                    cases.c.last_customer_at >= at - window,
                )
                .order_by(cases.c.last_customer_at.desc())
            ).scalars()
            for case_id in same_author:
                found.setdefault(case_id, "a new post from the same person while their case is open")
            rows = db.execute(select(cases).where(cases.c.id.in_(list(found)))).mappings().all() if found else []
        candidates = [
            case_record(row)
            for row in rows
            if row["state"] != CaseState.CLOSED.value and row["author_id"] == mention.author.id
        ]
        if not candidates:
            return None
        chosen = max(candidates, key=lambda c: (c.last_customer_at, c.id))
        reason = found[chosen.id]
        if len(candidates) > 1:
            others = ", ".join(f"#{c.id}" for c in sorted(candidates, key=lambda c: c.id) if c.id != chosen.id)
            reason += f" (it could also join {others}; the most recent case wins)"
        return Match(chosen, reason)

    # --- changing ---------------------------------------------------------------------------------

    def add_event(
        self,
        case_id: int,
        kind: str,
        actor: str,
        text: str = "",
        *,
        mention_id: int | None = None,
        reply_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        with self._db.begin() as tx:
            event(tx, case_id, kind, actor, text, at or now(), mention_id=mention_id, reply_id=reply_id)

    def assign(self, case_id: int, user: str | None, by: str) -> StoredCase:
        stamp = now()
        with self._db.begin() as tx:
            changed = tx.execute(
                update(cases)
                .where(cases.c.id == case_id)
                .values(assigned_to=user, assigned_at=stamp if user else None, updated_at=stamp)
            )
            if changed.rowcount != 1:
                raise NotFound(f"no case {case_id}")
            text = f"assigned to {user}" if user else "unassigned"
            event(tx, case_id, "assigned", by, text, stamp)
        return self.get(case_id)

    def resolve(self, case_id: int, by: str, note: str | None, check_back_at: datetime | None) -> StoredCase:
        """Resolved by a person (compare-and-set from an open state); the check-back falls due at `check_back_at`."""
        stamp = now()
        with self._db.begin() as tx:
            changed = tx.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.state.in_(ACTIVE))
                .values(
                    state=CaseState.RESOLVED.value,
                    resolved_at=stamp,
                    resolved_by=by,
                    resolution_note=note or None,
                    resolutions=cases.c.resolutions + 1,
                    check_back_due_at=check_back_at,
                    customer_replied=False,
                    resolve_proposed=False,
                    updated_at=stamp,
                )
            )
            if changed.rowcount == 1:
                event(tx, case_id, "resolved", by, note or "", stamp)
        if changed.rowcount != 1:
            raise Conflict(f"case {case_id} is {self.get(case_id).state}: only an open case can be resolved")
        return self.get(case_id)

    def reopen(self, case_id: int, by: str, reason: str) -> StoredCase:
        stamp = now()
        with self._db.begin() as tx:
            changed = tx.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.state.in_([CaseState.RESOLVED.value, CaseState.CLOSED.value]))
                .values(
                    state=CaseState.WAITING_ON_US.value,
                    check_back_due_at=None,
                    closed_at=None,
                    updated_at=stamp,
                )
            )
            if changed.rowcount == 1:
                event(tx, case_id, "reopened", by, reason, stamp)
        if changed.rowcount != 1:
            raise Conflict(f"case {case_id} is {self.get(case_id).state}: only a resolved or closed case reopens")
        return self.get(case_id)

    def set_state(
        self, case_id: int, state: str, by: str, reason: str, *, expected: Sequence[str], **values: Any
    ) -> bool:
        """Move a case to `state` if it is in one of `expected`; False if it was not (someone acted first)."""
        stamp = now()
        with self._db.begin() as tx:
            changed = tx.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.state.in_(list(expected)))
                .values(state=state, updated_at=stamp, **values)
            )
            if changed.rowcount == 1:
                event(tx, case_id, state, by, reason, stamp)
        return changed.rowcount == 1

    def add_reply(
        self,
        case_id: int,
        *,
        kind: ReplyKind,
        purpose: ReplyPurpose,
        text: str,
        by: str,
        state: ReplyState,
        dedupe_key: str,
        template_id: str | None = None,
        event_text: str | None = None,
        not_before: datetime | None = None,
    ) -> StoredReply | None:
        """A reply of the case (a person's, or the check-back), answering the case's latest post.

        None if a reply with this `dedupe_key` exists already: each is created once.
        """
        stamp = now()
        try:
            with self._db.begin() as tx:
                anchor = tx.execute(
                    select(mentions.c.id, mentions.c.account)
                    .where(mentions.c.case_id == case_id)
                    .order_by(mentions.c.id.desc())
                    .limit(1)
                ).first()
                if anchor is None:
                    raise NotFound(f"case {case_id} has no post to answer")
                reply_id = insert_reply(
                    tx,
                    anchor.id,
                    anchor.account,
                    kind,
                    text,
                    template_id,
                    state,
                    stamp,
                    purpose=purpose,
                    case_id=case_id,
                    dedupe_key=dedupe_key,
                    decided_by=by,
                    approved_by=by if state is ReplyState.APPROVED and by != "auto" else None,
                    not_before=not_before,
                )
                values: dict[str, Any] = {"updated_at": stamp}
                if purpose is ReplyPurpose.TEAM:
                    values |= {"customer_replied": False}
                tx.execute(update(cases).where(cases.c.id == case_id).values(**values))
                kind_text = "private" if kind is ReplyKind.DIRECT else "public"
                event(
                    tx,
                    case_id,
                    f"{purpose.value}_reply",
                    by,
                    event_text or f"{kind_text}: {text}",
                    stamp,
                    reply_id=reply_id,
                )
        except IntegrityError:
            return None
        with self._db.read() as db:
            row = db.execute(select(replies).where(replies.c.id == reply_id)).mappings().one()
        return reply_record(row)

    def reply_sent(self, reply: StoredReply, at: datetime) -> None:
        """Record on the case what a sent reply means: a first response, the ball in the customer's court."""
        if reply.case_id is None:
            return
        with self._db.begin() as tx:
            _on_case(tx, reply, at)

    def record_sent(self, reply: StoredReply, platform_post_id: str, at: datetime) -> None:
        """The reply is on the platform as `platform_post_id`, and its case knows: one transaction."""
        with self._db.begin() as tx:
            mark_sent(tx, reply.id, platform_post_id, at)
            if reply.case_id is not None:
                _on_case(tx, reply, at)

    def latest_in_channel(self, case_id: int, direct: bool) -> str | None:
        """The id of the newest post of the case in one channel (public or private), the customer's or ours:
        a new reply of the case answers it, so that each of our posts answers a post of its own."""
        visibility = (mentions.c.visibility == "direct") if direct else (mentions.c.visibility != "direct")
        kind = ReplyKind.DIRECT.value if direct else ReplyKind.PUBLIC.value
        with self._db.read() as db:
            theirs = db.execute(
                select(mentions.c.post_id, mentions.c.created_at)
                .where(mentions.c.case_id == case_id, visibility)
                .order_by(mentions.c.created_at.desc(), mentions.c.id.desc())
                .limit(1)
            ).first()
            ours = db.execute(
                select(replies.c.platform_post_id, replies.c.sent_at)
                .where(
                    replies.c.case_id == case_id,
                    replies.c.kind == kind,
                    replies.c.state == ReplyState.SENT.value,
                    replies.c.platform_post_id.is_not(None),
                )
                .order_by(replies.c.sent_at.desc(), replies.c.id.desc())
                .limit(1)
            ).first()
        found = [(as_utc(row[1]), row[0]) for row in (theirs, ours) if row is not None and row[1] is not None]
        return max(found)[1] if found else None

    def unsent_before(self, reply: StoredReply) -> bool:
        """An earlier reply of the same case and channel is still on its way: this one waits its turn."""
        if reply.case_id is None:
            return False
        with self._db.read() as db:
            found = db.execute(
                select(replies.c.id)
                .where(
                    replies.c.case_id == reply.case_id,
                    replies.c.kind == reply.kind.value,
                    replies.c.id < reply.id,
                    replies.c.state.in_([ReplyState.APPROVED.value, ReplyState.SENDING.value]),
                )
                .limit(1)
            ).first()
        return found is not None

    def due_check_backs(self, at: datetime) -> list[StoredCase]:
        """Resolved cases whose check-back is due and not yet created."""
        with self._db.read() as db:
            rows = db.execute(
                select(cases).where(
                    cases.c.state == CaseState.RESOLVED.value,
                    cases.c.check_back_due_at.is_not(None),
                    cases.c.check_back_due_at <= at,
                )
            ).mappings()
            return [case_record(row) for row in rows]

    def check_back_done(self, case_id: int, why: str) -> None:
        """The check-back was created (or will not be): it is no longer due."""
        with self._db.begin() as tx:
            tx.execute(update(cases).where(cases.c.id == case_id).values(check_back_due_at=None))
            event(tx, case_id, "check_back", "bot", why, now())

    def open_cases(self, account: str | None = None) -> list[StoredCase]:
        return self.listed(states=list(OPEN_STATES), account=account, limit=100_000)

    def since(self, at: datetime, account: str | None = None) -> list[StoredCase]:
        """Cases opened or changed since `at` (for figures)."""
        query = select(cases).where(or_(cases.c.opened_at >= at, cases.c.updated_at >= at))
        if account is not None:
            query = query.where(cases.c.account == account)
        with self._db.read() as db:
            return [case_record(row) for row in db.execute(query).mappings()]


def _on_case(tx: Connection, reply: StoredReply, at: datetime) -> None:
    """What a sent reply means for its case: a first response, the ball in the customer's court."""
    assert reply.case_id is not None
    human = reply.decided_by != "auto" or reply.approved_by is not None
    first = cases.c.first_human_response_at if human else cases.c.first_auto_response_at
    values: dict[str, Any] = {first.name: func.coalesce(first, at), "updated_at": at}
    tx.execute(update(cases).where(cases.c.id == reply.case_id).values(**values))
    if reply.purpose == ReplyPurpose.TEAM.value:
        tx.execute(
            update(cases)
            .where(cases.c.id == reply.case_id, cases.c.state.in_(ACTIVE))
            .values(state=CaseState.WAITING_ON_CUSTOMER.value)
        )
    event(tx, reply.case_id, "sent", reply.approved_by or reply.decided_by, reply.purpose, at, reply_id=reply.id)


def event(
    tx: Connection,
    case_id: int,
    kind: str,
    actor: str,
    text: str,
    at: datetime,
    *,
    mention_id: int | None = None,
    reply_id: int | None = None,
) -> None:
    tx.execute(
        insert(case_events).values(
            case_id=case_id, at=at, kind=kind, actor=actor, text=text, mention_id=mention_id, reply_id=reply_id
        )
    )
