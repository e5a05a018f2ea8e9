"""indexes for the hot path and the desk at scale: a mention's replies, and replies by when they were sent

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_replies_mention", "replies", ["mention_id"])
    op.create_index("ix_replies_sent", "replies", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_replies_sent", table_name="replies")
    op.drop_index("ix_replies_mention", table_name="replies")
