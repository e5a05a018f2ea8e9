"""usage ledger: what a metered connector asked of its platform (accounts.ledger), and replies an
attempt of unknown outcome may have posted (replies.maybe_posted)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger", sa.JSON(), nullable=True))
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("maybe_posted", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_column("maybe_posted")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("ledger")
