"""reliability: quarantined posts, an audit of erasures, replies whose outcome is unknown, the stream's
recent cursor marks (re-read overlap), which stored texts were masked or erased

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("post_id", sa.String(length=200), nullable=False),
        sa.Column("cursor", sa.String(length=100), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("author_handle", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint("account", "post_id", name="uq_quarantine_account_post"),
    )
    op.create_index("ix_quarantine_created", "quarantine", ["created_at"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Before this column, an attempt counted meant "look it up first": keep that for replies not settled.
    op.execute(
        "UPDATE replies SET outcome_unknown = "
        + ("1" if op.get_bind().dialect.name == "sqlite" else "true")
        + " WHERE attempts > 0 AND state IN ('approved', 'sending', 'failed')"
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cursor_marks", sa.JSON(), nullable=True))
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redacted", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.drop_column("redacted")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("cursor_marks")
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_column("outcome_unknown")
    op.drop_table("audit")
    op.drop_index("ix_quarantine_created", table_name="quarantine")
    op.drop_table("quarantine")
