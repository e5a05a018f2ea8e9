"""The database tables. Changes to them go through an Alembic migration in `bot/migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per configured account: where its mention stream was read up to, and whether it is paused.
accounts = Table(
    "accounts",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("platform", String(40), nullable=False),
    Column("cursor", String(100)),
    Column("paused_until", UTCDateTime()),
    Column("pause_reason", Text),
    Column("own_id", String(100)),
    Column("own_handle", String(200)),
    Column("max_characters", Integer),
    Column("requests", Integer, nullable=False, default=0),
    Column("posts_read", Integer, nullable=False, default=0),
    Column("posts_created", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime()),
    Column("last_cycle_at", UTCDateTime()),  # the end of its last cycle without an error (/health)
    Column("answer_since", UTCDateTime()),  # backfill: mentions posted before this are not answered
)

# Every mention ever seen, with how it was classified and what was decided. (account, post_id) is unique:
# that is what makes a mention stored once however often it arrives.
mentions = Table(
    "mentions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("platform", String(40), nullable=False),
    Column("post_id", String(100), nullable=False),
    Column("cursor", String(100), nullable=False),
    Column("author_id", String(100), nullable=False),
    Column("author_handle", String(300), nullable=False),
    Column("author_name", Text, nullable=False, default=""),
    Column("author_is_bot", Boolean, nullable=False, default=False),
    Column("text", Text, nullable=False),
    Column("url", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("in_reply_to_id", String(100)),
    Column("in_reply_to_author_id", String(100)),
    Column("conversation_id", String(100)),
    Column("visibility", String(20), nullable=False, default="public"),
    Column("mentions_brand", Boolean, nullable=False, default=True),
    Column("lang", String(8), nullable=False),
    Column("situation", String(40), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("personal_data", JSON, nullable=False),  # [{"kind", "start", "end"}]: spans, never the values
    Column("angry", Boolean, nullable=False, default=False),
    Column("opt_out", Boolean, nullable=False, default=False),
    Column("action", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("priority", Integer, nullable=False, default=0),
    UniqueConstraint("account", "post_id", name="uq_mentions_account_post"),
)
Index("ix_mentions_author", mentions.c.platform, mentions.c.author_id)

# The replies carebot drafted, one per (mention, kind): a mention can never get two public replies.
replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("account", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # public | direct
    Column("text", Text, nullable=False),
    Column("template_id", String(200)),
    Column("state", String(20), nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("platform_post_id", String(100)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),  # a worker is sending it; after this, it is stale
    Column("claimed_by", String(200)),  # that worker's process (bot/liveness.py): dead means stale at once
    Column("last_error", Text),
    Column("reworded", Boolean, nullable=False, default=False),
    Column("decided_by", String(200), nullable=False, default="auto"),
    Column("approved_by", String(200)),
    Column("approved_at", UTCDateTime()),
    Column("rejected_reason", Text),
    Column("sent_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("mention_id", "kind", name="uq_replies_mention_kind"),
)
Index("ix_replies_state", replies.c.account, replies.c.state)

# People who asked for no more automated replies (they said "stop").
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("platform", String(40), primary_key=True),
    Column("author_id", String(100), primary_key=True),
    Column("author_handle", String(300), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# What the team is told (bot/run/alerts.py raises, bot/run/notify.py delivers): one row per alert, `key`
# unique so that each is raised once, delivered by a job of its own, and never re-sent once delivered.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),  # e.g. "urgent:123": raised once per key
    Column("kind", String(40), nullable=False),  # urgent | waiting | a kind of its own (cap, incident, ...)
    Column("account", String(200)),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE")),
    Column("text", Text, nullable=False),  # one line for the team; never personal data
    Column("excerpt", Text),  # the post it is about, masked and shortened
    Column("since", UTCDateTime()),  # when the wait it reports started
    Column("state", String(20), nullable=False),  # new | sending | delivered | expired
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),  # a worker is delivering it; after this, it is stale
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
)
Index("ix_alerts_state", alerts.c.state, alerts.c.next_attempt_at)
Index("ix_alerts_mention", alerts.c.mention_id, alerts.c.kind)

# Logins to the approval desk, kept on the server so that logging out (or a new password) ends them even
# for a copy of the cookie. `id` is a digest of the token the cookie carries, never the token itself.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # of the credential it was opened with
    Column("csrf", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)
Index("ix_sessions_user", sessions.c.user)
Index("ix_sessions_expires_at", sessions.c.expires_at)
