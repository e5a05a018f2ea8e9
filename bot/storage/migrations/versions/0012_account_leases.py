"""account leases: one worker at a time reads an account's mention stream (several workers on one database);
the live workers, among whom the reading is shared out

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_leases",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_account_leases")),
    )
    op.create_table(
        "workers",
        sa.Column("worker", sa.String(length=250), nullable=False),
        sa.Column("seen_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_workers")),
    )
    op.create_index("ix_workers_seen_until", "workers", ["seen_until"])


def downgrade() -> None:
    op.drop_index("ix_workers_seen_until", table_name="workers")
    op.drop_table("workers")
    op.drop_table("account_leases")
