"""incidents: many reports of one problem followed as one, and the topics of each complaint

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("wording", sa.JSON(), nullable=False),
        sa.Column("eta", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("alerted_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_open", "incidents", ["account", "state", "topic"])
    op.create_table(
        "mention_topics",
        sa.Column("mention_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("author_id", sa.String(length=100), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"], ["mentions.id"], name=op.f("fk_mention_topics_mention_id_mentions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mention_id", "topic", name=op.f("pk_mention_topics")),
    )
    op.create_index("ix_mention_topics_recent", "mention_topics", ["account", "topic", "at", "author_id"])
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_events_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_incident_events_case_id_cases"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_events")),
    )
    op.create_index("ix_incident_events", "incident_events", ["incident_id", "id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_cases_incident_id_incidents"), "incidents", ["incident_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_cases_incident", ["incident_id"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_incident")
        batch.drop_constraint(op.f("fk_cases_incident_id_incidents"), type_="foreignkey")
        batch.drop_column("incident_id")
    op.drop_index("ix_incident_events", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index("ix_mention_topics_recent", table_name="mention_topics")
    op.drop_table("mention_topics")
    op.drop_index("ix_incidents_open", table_name="incidents")
    op.drop_table("incidents")
