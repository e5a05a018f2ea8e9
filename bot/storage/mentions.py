"""The `mentions` table (every post ever seen, how it was read and what was decided) and `opt_outs`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from bot.clock import as_utc, now
from bot.models import Decision, ReplyKind, ReplyState
from bot.storage.engine import Database
from bot.storage.errors import NotFound
from bot.storage.records import AuthorHistory, Classified, StoredMention, ThreadPost, mention_record
from bot.storage.replies import insert_reply
from bot.storage.tables import mentions, opt_outs, replies
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
    ) -> int | None:
        """Store the mention, its decision and its replies at once. None if it was already stored."""
        stamp = now()
        try:
            with self._db.begin() as tx:
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
                    )
                    .returning(mentions.c.id)
                ).scalar_one()
                if reply_state is not None:
                    texts = [(ReplyKind.PUBLIC, decision.reply_text or "")]
                    if decision.reply_text and decision.direct_text:
                        texts.append((ReplyKind.DIRECT, decision.direct_text))
                    for kind, text in texts:
                        insert_reply(tx, mention_id, account, kind, text, decision.template_id, reply_state, stamp)
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
        with self._db.read() as db:
            return int(
                db.execute(select(func.count()).select_from(mentions).where(mentions.c.account == account)).scalar_one()
            )

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
            last = db.execute(by_author.order_by(replies.c.id.desc()).limit(1)).first()
        return AuthorHistory(opted_out, int(recent), last.template_id if last else None)

    def thread(self, stored: StoredMention, limit: int = 6) -> list[ThreadPost]:
        """The earlier posts of the same conversation that carebot knows: other mentions and its own replies.

        Texts are as stored: whoever shows them masks personal data.
        """
        mention = stored.mention
        links = []
        if mention.conversation_id:
            links.append(mentions.c.conversation_id == mention.conversation_id)
        if mention.in_reply_to_id:
            links.append(mentions.c.post_id == mention.in_reply_to_id)
        if not links:
            return []
        with self._db.read() as db:
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
        posts = [ThreadPost(r.author_handle, r.text, as_utc(r.created_at), False) for r in earlier]
        posts += [ThreadPost("", r.text, as_utc(r.sent_at), True) for r in ours if r.sent_at is not None]
        return sorted(posts, key=lambda p: p.created_at)[-limit:]


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
