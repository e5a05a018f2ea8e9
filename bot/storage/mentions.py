"""The `mentions` table (every post ever seen, how it was read and what was decided) and `opt_outs`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, func, insert, select, union, update
from sqlalchemy.exc import IntegrityError

from bot.clock import as_utc, now
from bot.models import CaseState, Decision, ReplyKind, ReplyPurpose, ReplyState
from bot.storage.cases import event
from bot.storage.engine import Database
from bot.storage.errors import NotFound
from bot.storage.records import AuthorHistory, CasePlan, Classified, StoredMention, ThreadPost, mention_record
from bot.storage.replies import insert_reply
from bot.storage.tables import cases, mention_topics, mentions, opt_outs, replies
from connectors.base import Author, Mention


class Mentions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def has(self, account: str, post_id: str) -> bool:
        with self._db.read() as db:
            found = db.execute(
                select(mentions.c.id).where(mentions.c.account == account, mentions.c.post_id == post_id)
            ).first()
        return found is not None

    def record(
        self,
        account: str,
        mention: Mention,
        classified: Classified,
        decision: Decision,
        reply_state: ReplyState | None,
        case: CasePlan | None = None,
        topics: Sequence[str] = (),
    ) -> int | None:
        """Store the mention, its decision, its replies and its place in a case at once.

        None if it was already stored.
        """
        stamp = now()
        try:
            with self._db.begin() as tx:
                case_id = _apply_case(tx, case, account, mention, classified, decision, stamp) if case else None
                mention_id = tx.execute(
                    insert(mentions)
                    .values(
                        account=account,
                        platform=mention.platform,
                        post_id=mention.post_id,
                        cursor=mention.cursor,
                        author_id=mention.author.id,
                        author_handle=mention.author.handle,
                        author_name=mention.author.display_name,
                        author_is_bot=mention.author.is_bot,
                        text=mention.text,
                        url=mention.url,
                        created_at=mention.created_at,
                        received_at=stamp,
                        in_reply_to_id=mention.in_reply_to_id,
                        in_reply_to_author_id=mention.in_reply_to_author_id,
                        conversation_id=mention.conversation_id,
                        visibility=mention.visibility,
                        mentions_brand=mention.mentions_brand,
                        lang=classified.lang,
                        situation=classified.situation,
                        confidence=classified.confidence,
                        scores=classified.scores,
                        personal_data=classified.personal_data,
                        angry=classified.angry,
                        opt_out=classified.opt_out,
                        action=decision.action.value,
                        reason=decision.reason,
                        urgent=decision.urgent,
                        priority=decision.priority,
                        case_id=case_id,
                    )
                    .returning(mentions.c.id)
                ).scalar_one()
                reply_ids = []
                if reply_state is not None:
                    # A reply answers in the channel the customer used (a reply to a private message is
                    # private, whatever its purpose); only a public answer has a private follow-up.
                    channel = ReplyKind.DIRECT if mention.visibility == "direct" else ReplyKind.PUBLIC
                    texts = [(channel, decision.reply_text or "")]
                    holding = case is not None and case.holding
                    if not holding and channel is ReplyKind.PUBLIC and decision.reply_text and decision.direct_text:
                        texts.append((ReplyKind.DIRECT, decision.direct_text))
                    for kind, text in texts:
                        reply_ids.append(
                            insert_reply(
                                tx,
                                mention_id,
                                account,
                                kind,
                                text,
                                decision.template_id,
                                reply_state,
                                stamp,
                                purpose=ReplyPurpose.HOLDING if case and case.holding else ReplyPurpose.ANSWER,
                                case_id=case_id,
                                dedupe_key=f"holding:{case_id}:{mention_id}" if case and case.holding else None,
                            )
                        )
                if case is not None and case_id is not None:
                    _case_events(tx, case, case_id, mention_id, reply_ids, decision, stamp)
                for topic in topics:
                    tx.execute(
                        insert(mention_topics).values(
                            mention_id=mention_id,
                            topic=topic,
                            account=account,
                            author_id=mention.author.id,
                            lang=classified.lang,
                            at=stamp,
                        )
                    )
                if classified.opt_out:
                    _record_opt_out(tx, mention.platform, mention.author)
        except IntegrityError:
            if self.has(account, mention.post_id):
                return None
            raise
        return int(mention_id)

    def get(self, mention_id: int) -> StoredMention:
        with self._db.read() as db:
            row = db.execute(select(mentions).where(mentions.c.id == mention_id)).mappings().first()
        if row is None:
            raise NotFound(f"no mention {mention_id}")
        return mention_record(row)

    def all(self, account: str | None = None) -> list[StoredMention]:
        """Every stored mention (of one account), oldest first."""
        query = select(mentions).order_by(mentions.c.id)
        if account is not None:
            query = query.where(mentions.c.account == account)
        with self._db.read() as db:
            return [mention_record(row) for row in db.execute(query).mappings()]

    def count(self, account: str) -> int:
        """The account's stored mentions."""
        query = select(func.count()).select_from(mentions).where(mentions.c.account == account)
        with self._db.read() as db:
            return int(db.execute(query).scalar_one())

    def more_than_since(self, account: str, since: datetime, limit: int) -> bool:
        """Whether more than `limit` of the account's mentions were received since `since` (counting stops
        there: the overlap asks it of every cycle, and a burst may be large)."""
        # The account compared as an expression (its name followed by nothing): SQLite, which keeps no
        # statistics, would otherwise find the rows by the account, all of its history, instead of by when
        # they came (ix_mentions_received), which the overlap keeps to a few minutes.
        recent = (
            select(mentions.c.id)
            .where(mentions.c.account.concat("") == account, mentions.c.received_at >= since)
            .limit(limit + 1)
            .subquery()
        )
        with self._db.read() as db:
            return int(db.execute(select(func.count()).select_from(recent)).scalar_one()) > limit

    def author_history(self, platform: str, author_id: str) -> AuthorHistory:
        """Whether the author opted out, and what the bot said to them on its own lately."""
        since = now() - timedelta(hours=1)
        with self._db.read() as db:
            opted_out = (
                db.execute(
                    select(opt_outs.c.author_id).where(
                        opt_outs.c.platform == platform, opt_outs.c.author_id == author_id
                    )
                ).first()
                is not None
            )
            by_author = (
                select(replies.c.template_id, replies.c.created_at, replies.c.state)
                .join(mentions, mentions.c.id == replies.c.mention_id)
                .where(
                    mentions.c.platform == platform,
                    mentions.c.author_id == author_id,
                    replies.c.kind == ReplyKind.PUBLIC.value,
                    replies.c.decided_by == "auto",
                    replies.c.state.notin_([ReplyState.REJECTED.value, ReplyState.DRAFTED.value]),
                )
            )
            recent = db.execute(
                select(func.count()).select_from(by_author.where(replies.c.created_at >= since).subquery())
            ).scalar_one()
            # By created_at, which no index orders: the planner must start from the author's mentions rather
            # than walk every reply backwards looking for theirs.
            last = db.execute(by_author.order_by(replies.c.created_at.desc(), replies.c.id.desc()).limit(1)).first()
        return AuthorHistory(opted_out, int(recent), last.template_id if last else None)

    def thread(self, stored: StoredMention, limit: int = 6) -> list[ThreadPost]:
        """The earlier posts of the same conversation that carebot knows: other mentions and its own replies.

        Texts are as stored: whoever shows them masks personal data.
        """
        return self.threads([stored], limit)[stored.id]

    def threads(self, posts: Sequence[StoredMention], limit: int = 6) -> dict[int, list[ThreadPost]]:
        """`thread` of each post, by mention id, in two queries whatever their number (a page of the queue)."""
        found: dict[int, list[ThreadPost]] = {post.id: [] for post in posts}
        if not posts:
            return found
        shown = mentions.alias("shown")
        columns = (
            shown.c.id.label("shown_id"),
            mentions.c.id,
            mentions.c.author_handle,
            mentions.c.text,
            mentions.c.created_at,
        )

        def linked_by(link: Any) -> Select[Any]:
            return (
                select(*columns)
                .select_from(shown)
                .join(mentions, and_(mentions.c.account == shown.c.account, link))
                .where(shown.c.id.in_([post.id for post in posts]))
                .where(mentions.c.id != shown.c.id, mentions.c.created_at <= shown.c.created_at)
            )

        # A customer who answers our reply answers a post of ours, not of theirs: the thread is the post
        # that reply answered (the queue said "replying to a post carebot has not seen").
        answered_ours = (
            select(*columns)
            .select_from(shown)
            .join(
                replies,
                and_(replies.c.platform_post_id == shown.c.in_reply_to_id, replies.c.account == shown.c.account),
            )
            .join(mentions, mentions.c.id == replies.c.mention_id)
            .where(shown.c.id.in_([post.id for post in posts]))
            .where(mentions.c.id != shown.c.id, mentions.c.created_at <= shown.c.created_at)
        )
        # The same conversation, the post it answers, or the post our reply it answers was for: joins an
        # index serves each (an OR in one join would read the whole table), then each shown post's newest
        # `limit`.
        either = union(
            linked_by(mentions.c.conversation_id == shown.c.conversation_id),
            linked_by(mentions.c.post_id == shown.c.in_reply_to_id),
            answered_ours,
        ).subquery()
        number = func.row_number().over(
            partition_by=either.c.shown_id, order_by=(either.c.created_at.desc(), either.c.id.desc())
        )
        linked = select(either, number.label("n")).subquery()
        with self._db.read() as db:
            earlier = db.execute(select(linked).where(linked.c.n <= limit)).all()
            # The state is checked here, not in SQL: "state = 'sent'" would lead SQLite to the state index,
            # through every reply ever sent, instead of the few of these mentions.
            ours = db.execute(
                select(replies.c.mention_id, replies.c.text, replies.c.sent_at, replies.c.state).where(
                    replies.c.mention_id.in_({row.id for row in earlier}),
                    replies.c.kind == ReplyKind.PUBLIC.value,
                )
            ).all()
        answers: dict[int, list[ThreadPost]] = {}
        for row in ours:
            if row.state == ReplyState.SENT.value and row.sent_at is not None:
                answers.setdefault(row.mention_id, []).append(ThreadPost("", row.text, as_utc(row.sent_at), True))
        for row in earlier:
            found[row.shown_id].append(ThreadPost(row.author_handle, row.text, as_utc(row.created_at), False))
            found[row.shown_id] += answers.get(row.id, [])
        return {key: sorted(thread, key=lambda p: p.created_at)[-limit:] for key, thread in found.items()}


def _record_opt_out(tx: Connection, platform: str, author: Author) -> None:
    exists = tx.execute(
        select(opt_outs.c.author_id).where(opt_outs.c.platform == platform, opt_outs.c.author_id == author.id)
    ).first()
    if exists is None:
        tx.execute(
            insert(opt_outs).values(
                platform=platform, author_id=author.id, author_handle=author.handle, created_at=now()
            )
        )


def _apply_case(
    tx: Connection,
    plan: CasePlan,
    account: str,
    mention: Mention,
    classified: Classified,
    decision: Decision,
    stamp: datetime,
) -> int:
    """Open the case, or bring the joined case up to date; its id."""
    if plan.case_id is None:
        return int(
            tx.execute(
                insert(cases)
                .values(
                    account=account,
                    platform=mention.platform,
                    author_id=mention.author.id,
                    author_handle=mention.author.handle,
                    lang=classified.lang,
                    situation=classified.situation,
                    state=plan.state,
                    urgent=decision.urgent,
                    priority=decision.priority,
                    escalated=plan.escalated,
                    customer_replied=plan.customer_replied,
                    resolve_proposed=plan.resolve_proposed,
                    thread_deleted=False,
                    opened_at=stamp,
                    updated_at=stamp,
                    last_customer_at=stamp,
                    resolutions=0,
                    incident_id=plan.incident_id,
                )
                .returning(cases.c.id)
            ).scalar_one()
        )
    values: dict[str, Any] = {"state": plan.state, "last_customer_at": stamp, "updated_at": stamp}
    if plan.customer_replied:
        values["customer_replied"] = True
    if plan.escalated:
        values |= {"escalated": True, "urgent": True}
    if plan.resolve_proposed:
        values["resolve_proposed"] = True
    if plan.reopened:
        values |= {"check_back_due_at": None, "closed_at": None}
    if plan.holding:
        values["holding_sent_at"] = stamp
    if decision.urgent:
        values["urgent"] = True
    if plan.incident_id is not None:
        values["incident_id"] = plan.incident_id
    if classified.situation == "complaint":
        # Something went wrong for them, whatever their first post was (praise taken for trolling, a price
        # question): the case is a complaint now, with a complaint's targets and place in the lists.
        values["situation"] = "complaint"
    tx.execute(update(cases).where(cases.c.id == plan.case_id).values(**values))
    return plan.case_id


def _case_events(
    tx: Connection,
    plan: CasePlan,
    case_id: int,
    mention_id: int,
    reply_ids: list[int],
    decision: Decision,
    stamp: datetime,
) -> None:
    event(tx, case_id, "opened" if plan.case_id is None else "joined", "bot", plan.reason, stamp, mention_id=mention_id)
    if plan.reopened:
        event(tx, case_id, "reopened", "bot", "the customer wrote again after it was resolved", stamp)
    if plan.escalated:
        event(tx, case_id, "escalated", "bot", "the customer says they already tried and nobody answered", stamp)
    if plan.resolve_proposed:
        event(tx, case_id, "resolve_proposed", "bot", "the customer says it works now", stamp, mention_id=mention_id)
    if plan.state == CaseState.RESOLVED.value and plan.case_id is not None:
        event(tx, case_id, "resolved", "bot", "the customer says it works now", stamp)
    for reply_id in reply_ids:
        event(tx, case_id, "drafted", "bot", decision.reason, stamp, reply_id=reply_id)
