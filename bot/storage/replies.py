"""The `replies` table: drafts, the approval queue, and sending exactly once.

Every state change is a compare-and-set (`WHERE state = <expected>`), so two workers or two people acting
on the same reply at once cannot both win: the loser sees `Conflict`. A reply row, with its own
idempotency key, is created only by `insert_reply`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping, case, func, insert, select, true, update

from bot.clock import now
from bot.models import UNPROMPTED, Decision, ReplyKind, ReplyPurpose, ReplyState
from bot.storage.engine import Database
from bot.storage.errors import Conflict, NotFound
from bot.storage.records import (
    FollowUp,
    HistoryRow,
    QueueItem,
    StoredReply,
    history_record,
    queue_item_record,
    reply_record,
)
from bot.storage.tables import mentions, replies


def insert_reply(
    tx: Connection,
    mention_id: int,
    account: str,
    kind: ReplyKind,
    text: str,
    template_id: str | None,
    state: ReplyState,
    stamp: datetime,
    *,
    purpose: ReplyPurpose = ReplyPurpose.ANSWER,
    case_id: int | None = None,
    dedupe_key: str | None = None,
    decided_by: str = "auto",
    approved_by: str | None = None,
    not_before: datetime | None = None,
) -> int:
    """A new reply row, with an idempotency key of its own that every attempt to post it will carry."""
    return int(
        tx.execute(
            insert(replies)
            .values(
                mention_id=mention_id,
                account=account,
                kind=kind.value,
                purpose=purpose.value,
                case_id=case_id,
                dedupe_key=dedupe_key,
                text=text,
                template_id=template_id,
                state=state.value,
                idempotency_key=f"carebot-{uuid.uuid4()}",
                attempts=0,
                reworded=False,
                decided_by=decided_by,
                approved_by=approved_by,
                approved_at=stamp if approved_by else None,
                next_attempt_at=not_before,
                created_at=stamp,
                updated_at=stamp,
            )
            .returning(replies.c.id)
        ).scalar_one()
    )


def mark_sent(tx: Connection, reply_id: int, platform_post_id: str, stamp: datetime) -> None:
    """The reply is on the platform as `platform_post_id`; its claim ends."""
    tx.execute(
        update(replies)
        .where(replies.c.id == reply_id)
        .values(
            claimed_until=None,
            claimed_by=None,
            updated_at=stamp,
            state=ReplyState.SENT.value,
            platform_post_id=platform_post_id,
            sent_at=stamp,
            last_error=None,
            outcome_unknown=False,
        )
    )


class Replies:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, reply_id: int) -> StoredReply:
        with self._db.read() as db:
            row = db.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
        if row is None:
            raise NotFound(f"no reply {reply_id}")
        return reply_record(row)

    def for_mention(self, mention_id: int) -> list[StoredReply]:
        with self._db.read() as db:
            rows = db.execute(select(replies).where(replies.c.mention_id == mention_id).order_by(replies.c.id))
            return [reply_record(row) for row in rows.mappings()]

    # --- sending ----------------------------------------------------------------------------------

    def due(self, account: str, limit: int = 50, purposes: Collection[str] | None = None) -> list[StoredReply]:
        """Approved replies whose time has come, and sends abandoned mid-flight (their claim expired);
        only those of `purposes` if given."""
        stamp = now()
        query = (
            select(replies)
            .where(replies.c.account == account)
            .where(replies.c.purpose.in_(list(purposes)) if purposes is not None else true())
            # The IN alone finds the few live replies through the state index; the OR below picks among them.
            .where(replies.c.state.in_([ReplyState.APPROVED.value, ReplyState.SENDING.value]))
            .where(
                (
                    (replies.c.state == ReplyState.APPROVED.value)
                    & ((replies.c.next_attempt_at.is_(None)) | (replies.c.next_attempt_at <= stamp))
                )
                | ((replies.c.state == ReplyState.SENDING.value) & (replies.c.claimed_until < stamp))
            )
            # "+ 0": no index gives this order, so SQLite does not walk every reply in mention order to save
            # sorting the few due ones.
            .order_by(replies.c.mention_id + 0, replies.c.kind.desc(), replies.c.id)
            .limit(limit)
        )
        with self._db.read() as db:
            return [reply_record(row) for row in db.execute(query).mappings()]

    def claims_in_flight(self, account: str) -> list[tuple[int, str | None]]:
        """(reply id, claimant) of the replies being sent whose lease has not run out yet."""
        query = select(replies.c.id, replies.c.claimed_by).where(
            replies.c.account == account,
            replies.c.state == ReplyState.SENDING.value,
            replies.c.claimed_until >= now(),
        )
        with self._db.read() as db:
            return [(row.id, row.claimed_by) for row in db.execute(query)]

    def expire_claim(self, reply_id: int, claimed_by: str) -> bool:
        """End the lease of a claim whose claimant is known to be dead; False if the claim changed."""
        stamp = now()
        with self._db.begin() as tx:
            result = tx.execute(
                update(replies)
                .where(
                    replies.c.id == reply_id,
                    replies.c.state == ReplyState.SENDING.value,
                    replies.c.claimed_by == claimed_by,
                )
                .values(claimed_until=stamp - timedelta(seconds=1), updated_at=stamp)
            )
        return result.rowcount == 1

    def claim(
        self, reply: StoredReply, lease: timedelta, claimed_by: str | None = None, target_post_id: str | None = None
    ) -> datetime | None:
        """Mark a reply as being sent by us, and return when (the claim's stamp, which `renew_claim` checks);
        None if someone else changed or claimed it since `reply` was read.

        A compare-and-set on the whole row (`updated_at`), not only on its state: the sender posts
        `reply`'s text, and acts on what `reply` knows of the last attempt. Between the read and the claim a
        person may have taken the approval back, edited the draft and approved it again, or another worker
        may have tried it and left its outcome unknown; claiming that row from the old copy would post the
        words the person removed, or post again without looking for the first post.

        `target_post_id` (the post a case reply answers) is kept from the first claim on: a retry of an
        attempt whose outcome is unknown must look for, and answer, the same post.
        """
        stamp = now()
        with self._db.begin(one_statement=True) as tx:
            result = tx.execute(
                update(replies)
                .where(replies.c.id == reply.id, replies.c.updated_at == reply.updated_at)
                .where(
                    (replies.c.state == ReplyState.APPROVED.value)
                    | ((replies.c.state == ReplyState.SENDING.value) & (replies.c.claimed_until < stamp))
                )
                .values(
                    state=ReplyState.SENDING.value,
                    claimed_until=stamp + lease,
                    claimed_by=claimed_by,
                    attempts=replies.c.attempts + 1,
                    # From now until we hear back, nobody knows whether it is posted.
                    outcome_unknown=True,
                    target_post_id=func.coalesce(replies.c.target_post_id, target_post_id),
                    updated_at=stamp,
                )
            )
        return stamp if result.rowcount == 1 else None

    def renew_claim(self, reply_id: int, claimed_at: datetime, lease: timedelta) -> bool:
        """Extend our claim from now by `lease`; False if it no longer stands.

        A claim stands while the row is as `claim` left it at `claimed_at`. Once its lease has run out, another
        sender may claim the reply (its `claim` stamps the row anew) and post it: then it is theirs, and the
        first sender must not post it too. Until someone does, a late sender extends its own claim.
        """
        with self._db.begin(one_statement=True) as tx:
            result = tx.execute(
                update(replies)
                .where(
                    replies.c.id == reply_id,
                    replies.c.updated_at == claimed_at,
                    replies.c.state == ReplyState.SENDING.value,
                )
                .values(claimed_until=now() + lease)
            )
        return result.rowcount == 1

    def _unclaim(self, reply_id: int, claimed_at: datetime | None, **values: Any) -> bool:
        """Set `values` on a reply and end its claim: the sender is done with it, one way or another.

        With `claimed_at` (the sender's `claim`), only while that claim stands: a sender whose lease ran out
        and whose reply another sender has taken over since must not undo that sender's work (put a sent
        reply back to approved, or park it). False when it did not.
        """
        query = update(replies).where(replies.c.id == reply_id)
        if claimed_at is not None:
            query = query.where(replies.c.updated_at == claimed_at)
        with self._db.begin(one_statement=True) as tx:
            result = tx.execute(query.values(claimed_until=None, claimed_by=None, updated_at=now(), **values))
        return result.rowcount == 1

    def mark_sent(self, reply_id: int, platform_post_id: str) -> None:
        with self._db.begin() as tx:
            mark_sent(tx, reply_id, platform_post_id, now())

    def release(
        self,
        reply_id: int,
        error: str,
        retry_at: datetime | None,
        count_attempt: bool = True,
        outcome_unknown: bool | None = None,
        *,
        claimed_at: datetime | None = None,
    ) -> bool:
        """Put a claimed reply back to approved, to be tried again at `retry_at`. `outcome_unknown`: whether
        it may be on the platform already (then the next attempt looks it up first); None leaves it as the
        claim set it (unknown). `claimed_at`: see `_unclaim`, as for `park`, `drop` and `reword`."""
        values: dict[str, Any] = {"next_attempt_at": retry_at, "last_error": error}
        if outcome_unknown is not None:
            values["outcome_unknown"] = outcome_unknown
        if not count_attempt:
            values["attempts"] = replies.c.attempts - 1
        return self._unclaim(reply_id, claimed_at, state=ReplyState.APPROVED.value, **values)

    def park(
        self, reply_id: int, error: str, outcome_unknown: bool | None = None, *, claimed_at: datetime | None = None
    ) -> bool:
        """Give up on a reply for now: failed, with the reason, until a person retries it. A retry looks it
        up first while `outcome_unknown` (None: as it is)."""
        values: dict[str, Any] = {} if outcome_unknown is None else {"outcome_unknown": outcome_unknown}
        return self._unclaim(reply_id, claimed_at, state=ReplyState.FAILED.value, last_error=error, **values)

    def drop(self, reply_id: int, reason: str, *, claimed_at: datetime | None = None) -> bool:
        """Never send a claimed reply after all (it no longer makes sense): rejected by the bot, with why."""
        return self._unclaim(
            reply_id,
            claimed_at,
            state=ReplyState.REJECTED.value,
            approved_by="bot",
            rejected_reason=reason,
            outcome_unknown=False,
        )

    def reword(self, reply_id: int, text: str, template_id: str | None, *, claimed_at: datetime | None = None) -> bool:
        return self._unclaim(
            reply_id,
            claimed_at,
            text=text,
            template_id=template_id,
            reworded=True,
            state=ReplyState.APPROVED.value,
            outcome_unknown=False,
        )

    # --- the approval queue ---------------------------------------------------------------------------

    def queue(
        self,
        states: Sequence[ReplyState] = (ReplyState.PENDING, ReplyState.FAILED),
        accounts: Collection[str] | None = None,
    ) -> list[QueueItem]:
        """Replies waiting for a person, most urgent first: urgent, then priority, then oldest.

        The bot's public answer comes with its private follow-up (in any state). That follow-up is an
        item of its own only when its public answer is not waiting too (it failed to send after the public
        one went out). Every reply of a case stands alone. `accounts`: only these accounts' (None: all).
        """
        # A check-back or a fixed-notice (UNPROMPTED) answers no customer who waits: after the customers'
        # replies, oldest first by its own time (see QueueItem.urgent and waiting_since).
        ours = replies.c.purpose.in_(sorted(UNPROMPTED))
        query = (
            select(replies, mentions)
            .join(mentions, mentions.c.id == replies.c.mention_id)
            .where(replies.c.state.in_([s.value for s in states]))
            .order_by(
                case((ours, 0), else_=1).desc(),
                case((ours, False), else_=mentions.c.urgent).desc(),
                mentions.c.priority.desc(),
                case((ours, replies.c.created_at), else_=mentions.c.received_at),
                replies.c.kind.desc(),
                replies.c.id,
            )
        )
        if accounts is not None:
            query = query.where(replies.c.account.in_(list(accounts)))
        with self._db.read() as db:
            rows = db.execute(query).all()
            found = [queue_item_record(row) for row in rows]
            public = {item.mention.id for item in found if _answer(item.reply, ReplyKind.PUBLIC)}
            siblings = db.execute(
                select(replies).where(
                    replies.c.mention_id.in_(public),
                    replies.c.kind == ReplyKind.DIRECT.value,
                    replies.c.purpose == ReplyPurpose.ANSWER.value,
                )
            ).mappings()
            follow_ups = {row["mention_id"]: reply_record(row) for row in siblings}
        items = []
        for item in found:
            if _answer(item.reply, ReplyKind.PUBLIC):
                items.append(QueueItem(item.reply, item.mention, follow_ups.get(item.mention.id)))
            elif not (_answer(item.reply, ReplyKind.DIRECT) and item.mention.id in public):
                items.append(item)
        return items

    def follow_up_of(self, reply_id: int) -> StoredReply | None:
        """The private follow-up that goes with the bot's public answer `reply_id`, if it has one."""
        reply = self.get(reply_id)
        if not _answer(reply, ReplyKind.PUBLIC):
            return None
        found = [r for r in self.for_mention(reply.mention_id) if _answer(r, ReplyKind.DIRECT)]
        return found[0] if found else None

    def approve(
        self,
        reply_id: int,
        by: str,
        text: str | None = None,
        expected_text: str | None = None,
        follow_up: FollowUp | Literal["as-is"] | None = "as-is",
    ) -> StoredReply:
        """Approve a pending reply, with `text` instead of the draft if given.

        With `expected_text`, only if the draft is still exactly that (what the approver saw). The pending
        private follow-up of the bot's public answer goes with it: "as-is" (the command line, which listed
        it), or as `follow_up` says: the text the person was shown, or their edit. With `follow_up=None`
        (a page that showed no follow-up), or one that changed meanwhile, nothing is approved (`Conflict`):
        nobody approves a message they did not see. Such a follow-up is never approved on its own.
        """
        stamp = now()
        # `next_attempt_at` is kept: an incident's notices are spread under the posting limit (`not_before`),
        # and approving them all at once must not send them all at once.
        values: dict[str, Any] = {
            "state": ReplyState.APPROVED.value,
            "approved_by": by,
            "approved_at": stamp,
            "updated_at": stamp,
        }
        with self._db.begin() as tx:
            row = tx.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
            if row is None:
                raise NotFound(f"no reply {reply_id}")
            public = tx.execute(
                select(replies.c.id).where(
                    replies.c.mention_id == row["mention_id"],
                    replies.c.kind == ReplyKind.PUBLIC.value,
                    replies.c.purpose == ReplyPurpose.ANSWER.value,
                )
            ).scalar()
            is_answer = row["purpose"] == ReplyPurpose.ANSWER.value
            if is_answer and row["kind"] == ReplyKind.DIRECT.value and public is not None:
                raise Conflict(
                    f"reply {reply_id} is a private follow-up: it is approved with its public reply #{public}"
                )
            if text is None and not row["text"].strip():
                raise ValueError(f"reply {reply_id} has no draft: approve it with a text of your own")
            condition = (replies.c.id == reply_id) & (replies.c.state == ReplyState.PENDING.value)
            if expected_text is not None:
                condition &= replies.c.text == expected_text
            mine = dict(values, **({"text": text, "decided_by": by} if text is not None else {}))
            if tx.execute(update(replies).where(condition).values(**mine)).rowcount != 1:
                raise self._conflict(row, (ReplyState.PENDING,), tx)
            if is_answer:
                self._approve_follow_up(tx, row["mention_id"], reply_id, follow_up, values, by)
        return self.get(reply_id)

    def _approve_follow_up(
        self,
        tx: Connection,
        mention_id: int,
        reply_id: int,
        follow_up: FollowUp | Literal["as-is"] | None,
        values: dict[str, Any],
        by: str,
    ) -> None:
        sibling = tx.execute(
            select(replies.c.id, replies.c.state, replies.c.text).where(
                replies.c.mention_id == mention_id,
                replies.c.kind == ReplyKind.DIRECT.value,
                replies.c.purpose == ReplyPurpose.ANSWER.value,
                replies.c.id != reply_id,
            )
        ).first()
        if sibling is None or sibling.state != ReplyState.PENDING.value:
            if isinstance(follow_up, FollowUp):  # the page showed one that is no longer waiting: look again
                raise Conflict(f"the private follow-up #{follow_up.reply_id} changed while you were looking at it")
            return
        if follow_up == "as-is":
            follow_up = FollowUp(sibling.id, sibling.text)
        if follow_up is None or follow_up.reply_id != sibling.id:
            raise Conflict(f"reply {reply_id} has a private follow-up (#{sibling.id}) that was not shown: look at it")
        condition = (replies.c.id == sibling.id) & (replies.c.state == ReplyState.PENDING.value)
        theirs = dict(values)
        if follow_up.text is None or follow_up.text == follow_up.shown:
            condition &= replies.c.text == follow_up.shown  # approved as shown, only if still so
        else:
            theirs.update(text=follow_up.text, decided_by=by)  # their own words, whatever the draft became
        if tx.execute(update(replies).where(condition).values(**theirs)).rowcount != 1:
            raise Conflict(f"the private follow-up #{sibling.id} changed while you were looking at it")

    def unapprove(self, reply_id: int, by: str) -> StoredReply:
        """Take an approval back before the reply is sent: it waits for a person again (with its follow-up).

        Compare-and-set on `approved`: a reply already being sent (or sent) cannot be taken back.
        """
        stamp = now()
        values = {"state": ReplyState.PENDING.value, "approved_by": None, "approved_at": None, "updated_at": stamp}
        with self._db.begin() as tx:
            row = tx.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
            if row is None:
                raise NotFound(f"no reply {reply_id}")
            is_answer = row["purpose"] == ReplyPurpose.ANSWER.value
            if is_answer and row["kind"] == ReplyKind.DIRECT.value:
                raise Conflict(f"reply {reply_id} is a private follow-up: take back its public reply")
            condition = (replies.c.id == reply_id) & (replies.c.state == ReplyState.APPROVED.value)
            if tx.execute(update(replies).where(condition).values(**values)).rowcount != 1:
                raise self._conflict(row, (ReplyState.APPROVED,), tx)
            if is_answer:
                tx.execute(
                    update(replies)
                    .where(
                        replies.c.mention_id == row["mention_id"],
                        replies.c.kind == ReplyKind.DIRECT.value,
                        replies.c.purpose == ReplyPurpose.ANSWER.value,
                        replies.c.state == ReplyState.APPROVED.value,
                    )
                    .values(**values)
                )
        return self.get(reply_id)

    @staticmethod
    def _conflict(row: Any, allowed: Sequence[ReplyState], tx: Connection) -> Conflict:
        state = tx.execute(select(replies.c.state).where(replies.c.id == row["id"])).scalar_one()
        if state in [s.value for s in allowed]:
            return Conflict(f"reply {row['id']}'s draft changed meanwhile")
        wanted = " or ".join(s.value for s in allowed)
        return Conflict(f"reply {row['id']} is {state}, not {wanted}")

    def reject(self, reply_id: int, by: str, reason: str | None) -> StoredReply:
        values = {"state": ReplyState.REJECTED.value, "approved_by": by, "rejected_reason": reason or ""}
        return self._transition(reply_id, (ReplyState.PENDING, ReplyState.FAILED), values)

    def retry(self, reply_id: int, by: str) -> StoredReply:
        values = {
            "state": ReplyState.APPROVED.value,
            "attempts": 0,
            "next_attempt_at": None,
            "approved_by": by,
            "approved_at": now(),
        }
        return self._transition(reply_id, (ReplyState.FAILED,), values)

    def _transition(
        self,
        reply_id: int,
        allowed: Sequence[ReplyState],
        values: dict[str, Any],
        expected_text: str | None = None,
    ) -> StoredReply:
        """Compare-and-set; a public reply's private follow-up (if any) follows it, minus any new text."""
        states = [s.value for s in allowed]
        condition = (replies.c.id == reply_id) & replies.c.state.in_(states)
        if expected_text is not None:
            condition &= replies.c.text == expected_text
        with self._db.begin() as tx:
            result = tx.execute(update(replies).where(condition).values(updated_at=now(), **values))
            purpose = tx.execute(select(replies.c.purpose).where(replies.c.id == reply_id)).scalar()
            if result.rowcount == 1 and purpose == ReplyPurpose.ANSWER.value:
                sibling_values = {k: v for k, v in values.items() if k not in ("text", "decided_by")}
                mention_id = select(replies.c.mention_id).where(replies.c.id == reply_id).scalar_subquery()
                tx.execute(
                    update(replies)
                    .where(
                        replies.c.mention_id == mention_id,
                        replies.c.kind == ReplyKind.DIRECT.value,
                        replies.c.purpose == ReplyPurpose.ANSWER.value,
                        replies.c.id != reply_id,
                        replies.c.state.in_(states),
                    )
                    .values(updated_at=now(), **sibling_values)
                )
        if result.rowcount != 1:
            current = self.get(reply_id)  # raises NotFound
            if current.state in allowed:
                raise Conflict(f"reply {reply_id}'s draft changed meanwhile")
            wanted = " or ".join(s.value for s in allowed)
            raise Conflict(f"reply {reply_id} is {current.state.value}, not {wanted}")
        return self.get(reply_id)

    def redraft(self, reply_id: int, expected_text: str, decision: Decision, by: str) -> None:
        """Store a re-drafted reply and the mention's new situation at once.

        Compare-and-set: only while the public reply is still pending with the text the person saw, so a
        re-draft never overwrites someone's approval or edit. The mention's private follow-up follows the
        new playbook: re-drafted, added, or (if the playbook has none) rejected.
        """
        stamp = now()
        with self._db.begin() as tx:
            row = tx.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
            if row is None:
                raise NotFound(f"no reply {reply_id}")
            if row["kind"] != ReplyKind.PUBLIC.value or row["purpose"] != ReplyPurpose.ANSWER.value:
                raise Conflict(f"reply {reply_id} is not the bot's public answer; change the situation there")
            changed = tx.execute(
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
            tx.execute(
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
            direct = tx.execute(
                select(replies.c.id, replies.c.state).where(
                    replies.c.mention_id == mention_id,
                    replies.c.kind == ReplyKind.DIRECT.value,
                    replies.c.purpose == ReplyPurpose.ANSWER.value,
                )
            ).first()
            if direct is None and decision.direct_text:
                insert_reply(
                    tx,
                    mention_id,
                    row["account"],
                    ReplyKind.DIRECT,
                    decision.direct_text,
                    decision.template_id,
                    ReplyState.PENDING,
                    stamp,
                    case_id=row["case_id"],
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
                tx.execute(
                    update(replies)
                    .where(replies.c.id == direct.id, replies.c.state == ReplyState.PENDING.value)
                    .values(updated_at=stamp, **values)
                )

    def history(
        self,
        states: Sequence[str] = ("sent", "rejected"),
        before: int | None = None,
        limit: int = 50,
        accounts: Collection[str] | None = None,
    ) -> list[HistoryRow]:
        """Replies that went out or were turned down, newest first; `before` pages by reply id.

        One query per state, each walking the (state, id) index from the top: `state IN (...) ORDER BY id`
        would read every sent reply ever to sort them where SQLite cannot tell a rare state from a common one.
        """
        rows: list[RowMapping] = []
        with self._db.read() as db:
            for state in dict.fromkeys(states):
                query = (
                    select(replies, mentions.c.platform, mentions.c.author_handle, mentions.c.situation)
                    .add_columns(mentions.c.lang, mentions.c.text.label("post"))
                    .join(mentions, mentions.c.id == replies.c.mention_id)
                    .where(replies.c.state == state)
                    .order_by(replies.c.id.desc())
                    .limit(limit)
                )
                if before is not None:
                    query = query.where(replies.c.id < before)
                if accounts is not None:
                    query = query.where(replies.c.account.in_(list(accounts)))
                rows += db.execute(query).mappings().all()
        rows.sort(key=lambda row: row["id"], reverse=True)
        return [history_record(row) for row in rows[:limit]]


def _answer(reply: StoredReply, kind: ReplyKind) -> bool:
    """The bot's own answer to a mention (not a case's reply), of this kind."""
    return reply.kind is kind and reply.purpose == ReplyPurpose.ANSWER.value
