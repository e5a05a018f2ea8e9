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
    # Where the stream stood at moments of the last minutes, [[iso time, cursor], ...]: each read starts
    # from the one `overlap` ago, so a post that became visible late below the cursor is still read.
    Column("cursor_marks", JSON),
    Column("requests", Integer, nullable=False, default=0),
    Column("posts_read", Integer, nullable=False, default=0),
    Column("posts_created", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime()),
    # A metered connector's own record of its requests and billed objects (connectors.base.Ledger): JSON
    # only it reads, saved at each request so that every process keeps within the account's plan.
    Column("ledger", JSON),
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
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="SET NULL")),  # the customer's case it belongs to
    Column("redacted", String(20)),  # None | "masked" (storage.retention) | "erased" (carebot forget)
    UniqueConstraint("account", "post_id", name="uq_mentions_account_post"),
)
Index("ix_mentions_author", mentions.c.platform, mentions.c.author_id)
Index("ix_mentions_case", mentions.c.case_id)
Index("ix_mentions_conversation", mentions.c.account, mentions.c.conversation_id)
Index("ix_mentions_received", mentions.c.received_at)  # urgent mentions not yet announced

# The replies carebot drafted and people wrote. The bot's answer to a mention (purpose "answer") is one per
# (mention, kind): a mention can never get two automated public replies. Replies of a case (a person's,
# the holding reply, the check-back) carry a `dedupe_key`, unique, so each is created once, and the post
# they answer (`target_post_id`), fixed when first claimed.
replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), nullable=False),
    Column("account", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # public | direct
    Column("purpose", String(20), nullable=False, default="answer"),  # answer | holding | team | check_back
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="SET NULL")),
    Column("dedupe_key", String(200), unique=True),
    Column("target_post_id", String(100)),  # the post this reply answers on the platform (case replies)
    Column("text", Text, nullable=False),
    Column("template_id", String(200)),
    Column("state", String(20), nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("platform_post_id", String(100)),
    Column("attempts", Integer, nullable=False, default=0),
    # An attempt began and nobody knows whether it was posted: the next attempt looks it up first, whatever
    # `attempts` says (a person's retry resets those) and however long ago (idempotency keys expire).
    Column("outcome_unknown", Boolean, nullable=False, default=False),
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
)
# By state, newest first: the queue, what is due and a page of history read the few rows they show, however
# many replies were ever sent. (SQLite keeps no statistics by default: the first column must bind.)
Index("ix_replies_state", replies.c.state, replies.c.id)
Index("ix_replies_case", replies.c.case_id)
# Post id first: with the account first, SQLite (no statistics) would take it for any "account = ?" and read
# all of the account's replies rather than the few in a given state.
Index("ix_replies_platform_post", replies.c.platform_post_id, replies.c.account)
Index("ix_replies_mention", replies.c.mention_id)  # a mention's replies; the author's history joins on it
Index("ix_replies_sent", replies.c.sent_at)  # today's first responses
# Partial: WHERE purpose = 'answer' (migration 0005 says so to each database). The clause is left out here:
# its dialect options make SQLAlchemy load both dialects when this module is imported (0.04 s
# of every command's start-up), and nothing at run time reads indexes from these tables.
Index("uq_replies_answer", replies.c.mention_id, replies.c.kind, unique=True)

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

# One customer's problem on one account: their first post, everything they say after it in that thread or
# in private, every reply, its state and its timers (bot/run/cases.py).
cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("platform", String(40), nullable=False),
    Column("author_id", String(100), nullable=False),
    Column("author_handle", String(300), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("situation", String(40), nullable=False),
    Column("state", String(30), nullable=False),  # open | waiting_on_us | waiting_on_customer | resolved | closed
    Column("urgent", Boolean, nullable=False, default=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("escalated", Boolean, nullable=False, default=False),  # "I already tried and nobody answered"
    Column("customer_replied", Boolean, nullable=False, default=False),  # a post of theirs waits for a person
    Column("resolve_proposed", Boolean, nullable=False, default=False),  # "thanks, it works now"
    Column("thread_deleted", Boolean, nullable=False, default=False),
    Column("assigned_to", String(200)),
    Column("assigned_at", UTCDateTime()),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("last_customer_at", UTCDateTime(), nullable=False),
    Column("first_auto_response_at", UTCDateTime()),
    Column("first_human_response_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("resolved_by", String(200)),
    Column("resolution_note", Text),
    Column("resolutions", Integer, nullable=False, default=0),  # times resolved: one check-back each
    Column("check_back_due_at", UTCDateTime()),
    Column("holding_sent_at", UTCDateTime()),
    Column("closed_at", UTCDateTime()),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="SET NULL")),  # the outage it is part of
)
Index("ix_cases_author", cases.c.account, cases.c.author_id, cases.c.state)
Index("ix_cases_incident", cases.c.incident_id)
Index("ix_cases_state", cases.c.state, cases.c.account)  # the open cases of an account, not its history

# What happened in a case, in order: posts joining it (and why), replies, notes, state changes, who and when.
case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("actor", String(200), nullable=False),  # "bot" or the person
    Column("text", Text, nullable=False, default=""),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="SET NULL")),
    Column("reply_id", Integer, ForeignKey("replies.id", ondelete="SET NULL")),
)
Index("ix_case_events_case", case_events.c.case_id, case_events.c.id)

# What people decided about the bot's reading of a post (bot/run/decisions.py): labelled examples of this
# brand's own audience for `carebot train --with-decisions`. The text is stored masked.
decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="SET NULL")),
    Column("lang", String(8), nullable=False),
    Column("label", String(40), nullable=False),
    Column("source", String(40), nullable=False),  # decision:confirmed | decision:corrected | decision:rejected
    Column("text", Text, nullable=False),  # personal data masked
    Column("decided_by", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# Many people reporting the same problem at once (bot/run/incidents.py): answered consistently while open,
# each member told once when it is fixed.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("topic", String(60), nullable=False),  # a topic of playbooks/incident.yaml
    Column("state", String(20), nullable=False),  # open | resolved | false_alarm | merged
    Column("wording", JSON, nullable=False),  # lang -> the team's public words for the topic (else the playbook's)
    Column("eta", Text),  # when the team expects a fix, as they wrote it
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("resolved_by", String(200)),
    Column("note", Text),
    Column("merged_into", Integer),
    Column("alerted_size", Integer, nullable=False, default=0),  # members at its last alert: no alert storm
)
Index("ix_incidents_open", incidents.c.account, incidents.c.state, incidents.c.topic)

# What each complaint is about (the incident playbook's topics): the detector counts recent reporters here.
mention_topics = Table(
    "mention_topics",
    metadata,
    Column("mention_id", Integer, ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True),
    Column("topic", String(60), primary_key=True),
    Column("account", String(200), nullable=False),
    Column("author_id", String(100), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)
Index(
    "ix_mention_topics_recent",
    mention_topics.c.account,
    mention_topics.c.topic,
    mention_topics.c.at,
    mention_topics.c.author_id,  # covering: the detector counts authors from the index alone
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="SET NULL")),
)
Index("ix_incident_events", incident_events.c.incident_id, incident_events.c.id)

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

# Posts that could not be read or stored (bot/run/quarantine.py): set aside so that the stream moves on,
# with why and a masked excerpt, for a person to look at. (account, post_id) unique: once each.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(200), nullable=False),
    Column("platform", String(40), nullable=False),
    Column("post_id", String(200), nullable=False),  # the platform's id, or "notification:<id>"
    Column("cursor", String(100)),
    Column("stage", String(20), nullable=False),  # read (could not be parsed) | store | process
    Column("reason", Text, nullable=False),  # what was wrong, never the post's text
    Column("excerpt", Text, nullable=False, default=""),  # masked, shortened, made storable
    Column("author_handle", String(300), nullable=False, default=""),  # made storable; "" if none
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("account", "post_id", name="uq_quarantine_account_post"),
)
Index("ix_quarantine_created", quarantine.c.created_at)

# What was done to people's data on request or by rule (carebot forget, storage.retention): one line per
# act, what and how much, never the data itself.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),  # forget | retention
    Column("detail", Text, nullable=False),
)

# Which worker reads an account's mention stream right now (bot/storage/leases.py): one row per account,
# taken by compare-and-set, renewed after every page, given back after the read; a dead holder's lease
# runs out at `expires_at`. `read_at` is when the last read began, so that several workers poll a stream
# no more often than one would.
account_leases = Table(
    "account_leases",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("holder", String(200)),  # bot.run.liveness.process_identity() of the worker; None: free
    Column("expires_at", UTCDateTime()),
    Column("read_at", UTCDateTime()),
)

# The workers sharing this database (bot/run/lease.py), each with the moment it counts as gone unless it
# signs again: an account's reading is shared out evenly among the live ones.
workers = Table(
    "workers",
    metadata,
    Column("worker", String(250), primary_key=True),
    Column("seen_until", UTCDateTime(), nullable=False),
)
Index("ix_workers_seen_until", workers.c.seen_until)
