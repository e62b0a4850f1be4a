"""agents and the handoff console

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:00:00.000000

Agents (argon2id password hashes, availability, sign-in throttling), internal notes on handoff
requests, the agent who took a request as a foreign key, the request's status as a check, and a
case's resolution.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("last_failed_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failed_sign_ins >= 0", name=op.f("ck_agents_failed_sign_ins_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("username", name=op.f("uq_agents_username")),
    )
    # On SQLite this copies the table (before any note refers to it); test_migrations.py checks
    # that the partial unique index ("one open request per conversation") stays partial.
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_handoff_requests_taken_by_agents"), "agents", ["taken_by"], ["username"]
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_handoff_requests_status"),
            sa.text("status IN ('waiting', 'taken', 'handed_back')"),
        )

    op.create_table(
        "handoff_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_request_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author"], ["agents.username"], name=op.f("fk_handoff_notes_author_agents")
        ),
        sa.ForeignKeyConstraint(
            ["handoff_request_id"],
            ["handoff_requests.id"],
            name=op.f("fk_handoff_notes_handoff_request_id_handoff_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_notes")),
    )
    with op.batch_alter_table("handoff_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handoff_notes_handoff_request_id"), ["handoff_request_id"], unique=False
        )

    # Plain ALTER TABLE, not batch mode: on SQLite a batch would drop and re-create
    # support_cases, which the foreign keys of handoff_requests forbid once a request has a case.
    op.add_column("support_cases", sa.Column("closed_by", sa.String(length=100), nullable=True))
    op.add_column("support_cases", sa.Column("resolution", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35 (see upgrade() for why not batch mode).
    op.drop_column("support_cases", "resolution")
    op.drop_column("support_cases", "closed_by")

    # The notes go first: SQLite's batch mode below drops and re-creates handoff_requests.
    with op.batch_alter_table("handoff_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_notes_handoff_request_id"))
    op.drop_table("handoff_notes")

    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_handoff_requests_status"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_handoff_requests_taken_by_agents"), type_="foreignkey"
        )
    op.drop_table("agents")
