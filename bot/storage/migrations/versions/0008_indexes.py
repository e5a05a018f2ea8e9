"""indexes for the hot path and the desk at scale: a mention's replies, replies by when they were sent and by
state then id (the queue spans accounts; history pages by id), by platform post then account, cases by state
then account, mentions by when they were received

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
    op.drop_index("ix_replies_state", table_name="replies")
    op.create_index("ix_replies_state", "replies", ["state", "id"])
    op.drop_index("ix_cases_state", table_name="cases")
    op.create_index("ix_cases_state", "cases", ["state", "account"])
    op.create_index("ix_mentions_received", "mentions", ["received_at"])
    op.drop_index("ix_replies_platform_post", table_name="replies")
    op.create_index("ix_replies_platform_post", "replies", ["platform_post_id", "account"])


def downgrade() -> None:
    op.drop_index("ix_replies_platform_post", table_name="replies")
    op.create_index("ix_replies_platform_post", "replies", ["account", "platform_post_id"])
    op.drop_index("ix_mentions_received", table_name="mentions")
    op.drop_index("ix_cases_state", table_name="cases")
    op.create_index("ix_cases_state", "cases", ["state", "opened_at"])
    op.drop_index("ix_replies_state", table_name="replies")
    op.create_index("ix_replies_state", "replies", ["account", "state"])
    op.drop_index("ix_replies_sent", table_name="replies")
    op.drop_index("ix_replies_mention", table_name="replies")
