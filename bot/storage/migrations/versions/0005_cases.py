"""cases: a customer's problem followed from first post to check-back; replies of a case

- `cases` and `case_events`; `mentions.case_id`;
- `replies.purpose` (answer | holding | team | check_back), `case_id`, `dedupe_key`, `target_post_id`;
  the bot's answer stays one per (mention, kind), now as a partial unique index on purpose = 'answer';
- every stored mention the bot did not ignore or take for trolling joins a case, by the rules the daemon
  uses (a reply in a thread of the case, the same conversation, the same author within 24 hours).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CASE_COLUMNS = (
    "id",
    "account",
    "platform",
    "author_id",
    "author_handle",
    "lang",
    "situation",
    "state",
    "urgent",
    "priority",
    "escalated",
    "customer_replied",
    "resolve_proposed",
    "thread_deleted",
    "opened_at",
    "updated_at",
    "last_customer_at",
    "first_auto_response_at",
    "first_human_response_at",
    "resolutions",
    "closed_at",
)
JOIN_WINDOW = timedelta(hours=24)
IDLE = timedelta(days=7)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("author_id", sa.String(length=100), nullable=False),
        sa.Column("author_handle", sa.String(length=300), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("situation", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("customer_replied", sa.Boolean(), nullable=False),
        sa.Column("resolve_proposed", sa.Boolean(), nullable=False),
        sa.Column("thread_deleted", sa.Boolean(), nullable=False),
        sa.Column("assigned_to", sa.String(length=200), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_customer_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_auto_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_human_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolutions", sa.Integer(), nullable=False),
        sa.Column("check_back_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holding_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index("ix_cases_author", "cases", ["account", "author_id", "state"])
    op.create_index("ix_cases_state", "cases", ["state", "opened_at"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("mention_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mention_id"], ["mentions.id"], name=op.f("fk_case_events_mention_id_mentions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["replies.id"], name=op.f("fk_case_events_reply_id_replies"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"])
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_mentions_case_id_cases"), "cases", ["case_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_mentions_case", ["case_id"])
        batch.create_index("ix_mentions_conversation", ["account", "conversation_id"])
    with op.batch_alter_table("replies") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=20), nullable=False, server_default="answer"))
        batch.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dedupe_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("target_post_id", sa.String(length=100), nullable=True))
        batch.create_foreign_key(op.f("fk_replies_case_id_cases"), "cases", ["case_id"], ["id"], ondelete="SET NULL")
        batch.create_unique_constraint(op.f("uq_replies_dedupe_key"), ["dedupe_key"])
        batch.drop_constraint("uq_replies_mention_kind", type_="unique")
        batch.create_index("ix_replies_case", ["case_id"])
        batch.create_index("ix_replies_platform_post", ["account", "platform_post_id"])
    op.create_index(
        "uq_replies_answer",
        "replies",
        ["mention_id", "kind"],
        unique=True,
        sqlite_where=sa.text("purpose = 'answer'"),
        postgresql_where=sa.text("purpose = 'answer'"),
    )
    _backfill(op.get_bind())


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _backfill(bind: sa.Connection) -> None:
    """Join every stored mention to a case, oldest first, with the daemon's rules."""
    mentions = bind.execute(
        sa.text(
            "SELECT id, account, platform, post_id, author_id, author_handle, in_reply_to_id, conversation_id, "
            "lang, situation, action, urgent, priority, created_at FROM mentions ORDER BY id"
        )
    ).mappings()
    sent = bind.execute(
        sa.text(
            "SELECT mention_id, platform_post_id, state, sent_at, approved_by FROM replies "
            "WHERE platform_post_id IS NOT NULL OR state IN ('pending', 'failed')"
        )
    ).mappings()
    replies_of: dict[int, list[Any]] = {}
    for row in sent:
        replies_of.setdefault(row["mention_id"], []).append(row)
    case_of_post: dict[tuple[str, str], int] = {}
    case_of_conversation: dict[tuple[str, str], int] = {}
    last_of_author: dict[tuple[str, str], tuple[int, datetime]] = {}
    cases: dict[int, dict[str, Any]] = {}
    members: dict[int, list[int]] = {}
    for m in mentions:
        if m["action"] == "ignore" or m["situation"] == "trolling":
            continue
        account, at = m["account"], _aware(m["created_at"])
        found = None
        if m["in_reply_to_id"]:
            found = case_of_post.get((account, m["in_reply_to_id"]))
        if found is None and m["conversation_id"]:
            found = case_of_conversation.get((account, m["conversation_id"]))
        if found is None:
            last = last_of_author.get((account, m["author_id"]))
            if last is not None and at - last[1] <= JOIN_WINDOW:
                found = last[0]
        if found is None:
            found = len(cases) + 1
            cases[found] = {
                "account": account,
                "platform": m["platform"],
                "author_id": m["author_id"],
                "author_handle": m["author_handle"],
                "lang": m["lang"],
                "situation": m["situation"],
                "urgent": bool(m["urgent"]),
                "priority": m["priority"],
                "opened_at": at,
                "last_customer_at": at,
                "waiting": False,
                "first_auto": None,
                "first_human": None,
            }
            members[found] = []
        case = cases[found]
        case["last_customer_at"] = max(case["last_customer_at"], at)
        members[found].append(m["id"])
        case_of_post[(account, m["post_id"])] = found
        if m["conversation_id"]:
            case_of_conversation[(account, m["conversation_id"])] = found
        last_of_author[(account, m["author_id"])] = (found, at)
        for reply in replies_of.get(m["id"], []):
            if reply["platform_post_id"]:
                case_of_post[(account, reply["platform_post_id"])] = found
            if reply["state"] in ("pending", "failed"):
                case["waiting"] = True
            if reply["sent_at"] is not None:
                key = "first_human" if reply["approved_by"] else "first_auto"
                sent_at = _aware(reply["sent_at"])
                case[key] = sent_at if case[key] is None else min(case[key], sent_at)
    now = datetime.now(UTC)
    table = sa.table(
        "cases",
        *(sa.column(name) for name in CASE_COLUMNS),
    )
    for number, case in cases.items():
        idle = now - case["last_customer_at"] > IDLE
        state = "closed" if idle else ("waiting_on_us" if case["waiting"] else "waiting_on_customer")
        bind.execute(
            table.insert().values(
                id=number,
                account=case["account"],
                platform=case["platform"],
                author_id=case["author_id"],
                author_handle=case["author_handle"],
                lang=case["lang"],
                situation=case["situation"],
                state=state,
                urgent=case["urgent"],
                priority=case["priority"],
                escalated=False,
                customer_replied=False,
                resolve_proposed=False,
                thread_deleted=False,
                opened_at=case["opened_at"],
                updated_at=now,
                last_customer_at=case["last_customer_at"],
                first_auto_response_at=case["first_auto"],
                first_human_response_at=case["first_human"],
                resolutions=0,
                closed_at=now if idle else None,
            )
        )
        ids = members[number]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            bind.execute(
                sa.text("UPDATE mentions SET case_id = :case WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"case": number, "ids": chunk},
            )
            bind.execute(
                sa.text("UPDATE replies SET case_id = :case WHERE mention_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"case": number, "ids": chunk},
            )
    if cases and bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :n)"), {"n": max(cases)})


def downgrade() -> None:
    op.drop_index("uq_replies_answer", table_name="replies")
    with op.batch_alter_table("replies") as batch:
        batch.drop_index("ix_replies_platform_post")
        batch.drop_index("ix_replies_case")
        batch.create_unique_constraint("uq_replies_mention_kind", ["mention_id", "kind"])
        batch.drop_constraint(op.f("uq_replies_dedupe_key"), type_="unique")
        batch.drop_constraint(op.f("fk_replies_case_id_cases"), type_="foreignkey")
        batch.drop_column("target_post_id")
        batch.drop_column("dedupe_key")
        batch.drop_column("case_id")
        batch.drop_column("purpose")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_index("ix_mentions_conversation")
        batch.drop_index("ix_mentions_case")
        batch.drop_constraint(op.f("fk_mentions_case_id_cases"), type_="foreignkey")
        batch.drop_column("case_id")
    op.drop_index("ix_case_events_case", table_name="case_events")
    op.drop_table("case_events")
    op.drop_index("ix_cases_state", table_name="cases")
    op.drop_index("ix_cases_author", table_name="cases")
    op.drop_table("cases")
