"""agent sign-in throttled per account and client

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:30:00.000000

Failed sign-ins per agent and client (address, or IPv6 /64), so that five wrong passwords from
one client lock that client out rather than the agent. The agents' own counters stay: they now
hold the account's ceiling over every client.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_sign_in_failures",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failures >= 0", name=op.f("ck_agent_sign_in_failures_failures_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_sign_in_failures_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "client", name=op.f("pk_agent_sign_in_failures")),
    )
    # Counts made before this revision were for every client at once: start afresh.
    op.execute("UPDATE agents SET failed_sign_ins = 0, last_failed_sign_in_at = NULL")


def downgrade() -> None:
    op.drop_table("agent_sign_in_failures")
