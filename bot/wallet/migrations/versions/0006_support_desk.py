"""support desk: agent presence and case history

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:40:00.000000

``agents.present_until``: the open console's heartbeat keeps pushing it forward; once it
passes, the agent is away (NULL: no console keeps it). ``case_entries``: an agent's notes
on a support case and the email replies sent for it (with their outbox row).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE: a batch on SQLite would re-create agents, which others refer to.
    op.add_column("agents", sa.Column("present_until", sa.DateTime(timezone=True)))
    op.create_table(
        "case_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('note', 'email')", name=op.f("ck_case_entries_kind")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["support_cases.id"], name=op.f("fk_case_entries_case_id_support_cases")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_case_entries_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entries")),
    )
    op.create_index(op.f("ix_case_entries_case_id"), "case_entries", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_entries_case_id"), table_name="case_entries")
    op.drop_table("case_entries")
    op.drop_column("agents", "present_until")
