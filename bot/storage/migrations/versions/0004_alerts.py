"""alerts: an outbox of what the team is told, delivered by a job of its own (replaces notifications)

Every alert the old table recorded was already sent: it becomes a delivered alert with the same key, so an
upgrade never tells the team twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=True),
        sa.Column("mention_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["mention_id"], ["mentions.id"], name=op.f("fk_alerts_mention_id_mentions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("key", name=op.f("uq_alerts_key")),
    )
    op.create_index("ix_alerts_state", "alerts", ["state", "next_attempt_at"])
    op.create_index("ix_alerts_mention", "alerts", ["mention_id", "kind"])
    op.execute(
        "INSERT INTO alerts (key, kind, mention_id, text, state, attempts, created_at, delivered_at) "
        "SELECT kind || ':' || CAST(mention_id AS VARCHAR), kind, mention_id, '', 'delivered', 1, "
        "created_at, created_at "
        "FROM notifications"
    )
    op.drop_table("notifications")


def downgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("mention_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"], ["mentions.id"], name=op.f("fk_notifications_mention_id_mentions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mention_id", "kind", name=op.f("pk_notifications")),
    )
    op.execute(
        "INSERT INTO notifications (mention_id, kind, created_at) "
        "SELECT mention_id, kind, created_at FROM alerts WHERE mention_id IS NOT NULL AND kind IN ('urgent', 'waiting')"
    )
    op.drop_index("ix_alerts_mention", table_name="alerts")
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.drop_table("alerts")
