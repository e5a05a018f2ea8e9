"""The database: open it (migrating to the newest schema), and every read and write carebot makes.

State changes of a reply are compare-and-set updates (`WHERE state = <expected>`), so two workers or two
people acting on the same reply at once cannot both win: the loser sees `Conflict`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bot.models import Decision, ReplyKind, ReplyState
from bot.records import (
    AccountState,
    AuthorHistory,
    Classified,
    QueueItem,
    StoredMention,
    StoredReply,
    account_record,
    mention_record,
    queue_item_record,
    reply_record,
)
from bot.schema import accounts, mentions, opt_outs, replies
from connectors.base import Author, Mention


class NotFound(LookupError):
    """No reply with that id."""


class Conflict(RuntimeError):
    """The reply is not in a state that allows this (someone else acted first)."""


def now() -> datetime:
    return datetime.now(UTC)


MIGRATION_LOCK = 0x6361726562  # PostgreSQL advisory lock id: "careb"


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest revision (a fresh database is created from revision one).

    All of it in one transaction, so a process killed half-way leaves the schema as it found it, and
    processes starting together take turns instead of both creating the same tables.
    """
    if connection.dialect.name == "sqlite":
        # pysqlite runs DDL outside any transaction until a write opens one; open it first. IMMEDIATE
        # takes the write lock now, so a second process starting waits (busy_timeout) and finds it done.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = AlembicConfig()
    config.set_main_option("script_location", "bot:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web page read while the daemon writes; busy_timeout waits for a lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


class Storage:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Storage:
        engine = create_db_engine(url)
        with engine.begin() as connection:
            migrate(connection)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # --- accounts -------------------------------------------------------------------------------

    def ensure_account(self, name: str, platform: str) -> AccountState:
        with self._tx() as tx:
            row = tx.execute(select(accounts).where(accounts.c.name == name)).mappings().first()
            if row is None:
                try:
                    with tx.begin_nested():
                        tx.execute(
                            insert(accounts).values(
                                name=name,
                                platform=platform,
                                requests=0,
                                posts_read=0,
                                posts_created=0,
                                updated_at=now(),
                            )
                        )
                except IntegrityError:
                    pass  # another worker created it first
                row = tx.execute(select(accounts).where(accounts.c.name == name)).mappings().one()
        return account_record(row)

    def account_state(self, name: str) -> AccountState | None:
        with self._tx() as tx:
            row = tx.execute(select(accounts).where(accounts.c.name == name)).mappings().first()
        return account_record(row) if row else None

    def all_account_states(self) -> list[AccountState]:
        with self._tx() as tx:
            rows = tx.execute(select(accounts).order_by(accounts.c.name)).mappings().all()
        return [account_record(row) for row in rows]

    def update_account(self, name: str, **values: Any) -> None:
        with self._tx() as tx:
            tx.execute(update(accounts).where(accounts.c.name == name).values(updated_at=now(), **values))

    def add_usage(self, name: str, requests: int = 0, posts_read: int = 0, posts_created: int = 0) -> None:
        with self._tx() as tx:
            tx.execute(
                update(accounts)
                .where(accounts.c.name == name)
                .values(
                    requests=accounts.c.requests + requests,
                    posts_read=accounts.c.posts_read + posts_read,
                    posts_created=accounts.c.posts_created + posts_created,
                )
            )

    # --- mentions -------------------------------------------------------------------------------

    def has_mention(self, account: str, post_id: str) -> bool:
        with self._tx() as tx:
            found = tx.execute(
                select(mentions.c.id).where(mentions.c.account == account, mentions.c.post_id == post_id)
            ).first()
        return found is not None

    def record_mention(
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
            with self._tx() as tx:
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
                        tx.execute(
                            insert(replies).values(
                                mention_id=mention_id,
                                account=account,
                                kind=kind.value,
                                text=text,
                                template_id=decision.template_id,
                                state=reply_state.value,
                                idempotency_key=f"carebot-{uuid.uuid4()}",
                                attempts=0,
                                reworded=False,
                                decided_by="auto",
                                created_at=stamp,
                                updated_at=stamp,
                            )
                        )
                if classified.opt_out:
                    self._record_opt_out(tx, mention.platform, mention.author)
        except IntegrityError:
            if self.has_mention(account, mention.post_id):
                return None
            raise
        return int(mention_id)

    def _record_opt_out(self, tx: Connection, platform: str, author: Author) -> None:
        exists = tx.execute(
            select(opt_outs.c.author_id).where(opt_outs.c.platform == platform, opt_outs.c.author_id == author.id)
        ).first()
        if exists is None:
            tx.execute(
                insert(opt_outs).values(
                    platform=platform, author_id=author.id, author_handle=author.handle, created_at=now()
                )
            )

    def author_history(self, platform: str, author_id: str) -> AuthorHistory:
        since = now() - timedelta(hours=1)
        with self._tx() as tx:
            opted_out = (
                tx.execute(
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
            recent = tx.execute(
                select(func.count()).select_from(by_author.where(replies.c.created_at >= since).subquery())
            ).scalar_one()
            last = tx.execute(by_author.order_by(replies.c.id.desc()).limit(1)).first()
        return AuthorHistory(opted_out, int(recent), last.template_id if last else None)

    def mention(self, mention_id: int) -> StoredMention:
        with self._tx() as tx:
            row = tx.execute(select(mentions).where(mentions.c.id == mention_id)).mappings().first()
        if row is None:
            raise NotFound(f"no mention {mention_id}")
        return mention_record(row)

    def mentions_for(self, account: str | None = None) -> list[StoredMention]:
        query = select(mentions).order_by(mentions.c.id)
        if account is not None:
            query = query.where(mentions.c.account == account)
        with self._tx() as tx:
            return [mention_record(row) for row in tx.execute(query).mappings()]

    # --- replies: sending -------------------------------------------------------------------------

    def due_replies(self, account: str, limit: int = 50) -> list[StoredReply]:
        """Approved replies whose time has come, and sends abandoned mid-flight (their claim expired)."""
        stamp = now()
        query = (
            select(replies)
            .where(replies.c.account == account)
            .where(
                (
                    (replies.c.state == ReplyState.APPROVED.value)
                    & ((replies.c.next_attempt_at.is_(None)) | (replies.c.next_attempt_at <= stamp))
                )
                | ((replies.c.state == ReplyState.SENDING.value) & (replies.c.claimed_until < stamp))
            )
            .order_by(replies.c.mention_id, replies.c.kind.desc(), replies.c.id)
            .limit(limit)
        )
        with self._tx() as tx:
            return [reply_record(row) for row in tx.execute(query).mappings()]

    def claims_in_flight(self, account: str) -> list[tuple[int, str | None]]:
        """(reply id, claimant) of the replies being sent whose lease has not run out yet."""
        query = select(replies.c.id, replies.c.claimed_by).where(
            replies.c.account == account,
            replies.c.state == ReplyState.SENDING.value,
            replies.c.claimed_until >= now(),
        )
        with self._tx() as tx:
            return [(row.id, row.claimed_by) for row in tx.execute(query)]

    def expire_claim(self, reply_id: int, claimed_by: str) -> bool:
        """End the lease of a claim whose claimant is known to be dead; False if the claim changed."""
        stamp = now()
        with self._tx() as tx:
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

    def claim(self, reply: StoredReply, lease: timedelta, claimed_by: str | None = None) -> bool:
        """Mark a reply as being sent by us; False if someone else changed or claimed it first."""
        stamp = now()
        with self._tx() as tx:
            result = tx.execute(
                update(replies)
                .where(replies.c.id == reply.id)
                .where(
                    (replies.c.state == ReplyState.APPROVED.value)
                    | ((replies.c.state == ReplyState.SENDING.value) & (replies.c.claimed_until < stamp))
                )
                .values(
                    state=ReplyState.SENDING.value,
                    claimed_until=stamp + lease,
                    claimed_by=claimed_by,
                    attempts=replies.c.attempts + 1,
                    updated_at=stamp,
                )
            )
        return result.rowcount == 1

    def _unclaim(self, reply_id: int, **values: Any) -> None:
        """Set `values` on a reply and end its claim: the sender is done with it, one way or another."""
        with self._tx() as tx:
            tx.execute(
                update(replies)
                .where(replies.c.id == reply_id)
                .values(claimed_until=None, claimed_by=None, updated_at=now(), **values)
            )

    def mark_sent(self, reply_id: int, platform_post_id: str) -> None:
        self._unclaim(
            reply_id,
            state=ReplyState.SENT.value,
            platform_post_id=platform_post_id,
            sent_at=now(),
            last_error=None,
        )

    def release(self, reply_id: int, error: str, retry_at: datetime | None, count_attempt: bool = True) -> None:
        """Put a claimed reply back to approved, to be tried again at `retry_at`."""
        values: dict[str, Any] = {"next_attempt_at": retry_at, "last_error": error}
        if not count_attempt:
            values["attempts"] = replies.c.attempts - 1
        self._unclaim(reply_id, state=ReplyState.APPROVED.value, **values)

    def park(self, reply_id: int, error: str) -> None:
        """Give up on a reply for now: failed, with the reason, until a person retries it."""
        self._unclaim(reply_id, state=ReplyState.FAILED.value, last_error=error)

    def reword(self, reply_id: int, text: str, template_id: str | None) -> None:
        self._unclaim(reply_id, text=text, template_id=template_id, reworded=True, state=ReplyState.APPROVED.value)

    # --- replies: the approval queue -------------------------------------------------------------

    def reply(self, reply_id: int) -> StoredReply:
        with self._tx() as tx:
            row = tx.execute(select(replies).where(replies.c.id == reply_id)).mappings().first()
        if row is None:
            raise NotFound(f"no reply {reply_id}")
        return reply_record(row)

    def replies_for(self, mention_id: int) -> list[StoredReply]:
        with self._tx() as tx:
            rows = tx.execute(select(replies).where(replies.c.mention_id == mention_id).order_by(replies.c.id))
            return [reply_record(row) for row in rows.mappings()]

    def queue(self, states: Sequence[ReplyState] = (ReplyState.PENDING, ReplyState.FAILED)) -> list[QueueItem]:
        """Replies waiting for a person, most urgent first: urgent, then priority, then oldest."""
        query = (
            select(replies, mentions)
            .join(mentions, mentions.c.id == replies.c.mention_id)
            .where(replies.c.state.in_([s.value for s in states]), replies.c.kind == ReplyKind.PUBLIC.value)
            .order_by(mentions.c.urgent.desc(), mentions.c.priority.desc(), mentions.c.received_at, replies.c.id)
        )
        with self._tx() as tx:
            rows = tx.execute(query).all()
        return [queue_item_record(row) for row in rows]

    def approve(self, reply_id: int, by: str, text: str | None = None, expected_text: str | None = None) -> StoredReply:
        """Approve a pending reply, with `text` instead of the draft if given.

        With `expected_text`, only if the draft is still exactly that (what the approver saw).
        """
        values: dict[str, Any] = {
            "state": ReplyState.APPROVED.value,
            "approved_by": by,
            "approved_at": now(),
            "next_attempt_at": None,
        }
        if text is not None:
            values["text"] = text
            values["decided_by"] = by
        elif not self.reply(reply_id).text.strip():
            raise ValueError(f"reply {reply_id} has no draft: approve it with a text of your own")
        return self._transition(reply_id, (ReplyState.PENDING,), values, expected_text)

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
        with self._tx() as tx:
            result = tx.execute(update(replies).where(condition).values(updated_at=now(), **values))
            if result.rowcount == 1:
                sibling_values = {k: v for k, v in values.items() if k not in ("text", "decided_by")}
                mention_id = select(replies.c.mention_id).where(replies.c.id == reply_id).scalar_subquery()
                tx.execute(
                    update(replies)
                    .where(
                        replies.c.mention_id == mention_id,
                        replies.c.kind == ReplyKind.DIRECT.value,
                        replies.c.id != reply_id,
                        replies.c.state.in_(states),
                    )
                    .values(updated_at=now(), **sibling_values)
                )
        if result.rowcount != 1:
            current = self.reply(reply_id)  # raises NotFound
            if current.state in allowed:
                raise Conflict(f"reply {reply_id}'s draft changed meanwhile")
            wanted = " or ".join(s.value for s in allowed)
            raise Conflict(f"reply {reply_id} is {current.state.value}, not {wanted}")
        return self.reply(reply_id)
