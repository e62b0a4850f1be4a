"""verifications and conversation owners

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:30:00.000000

What the action server proved in a conversation (the console trusts only these rows, never a
slot), and the customer a conversation belongs to (the first who signed in to it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("gift_card_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "method IN ('signed_in_owner', 'order_number', 'order_details')",
            name=op.f("ck_verifications_method"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_verifications_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_cards.id"],
            name=op.f("fk_verifications_gift_card_id_gift_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(op.f("ix_verifications_conversation_id"), "verifications", ["conversation_id"])
    op.create_index(op.f("ix_verifications_gift_card_id"), "verifications", ["gift_card_id"])
    op.create_table(
        "conversation_owners",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_conversation_owners_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_owners")),
    )
    op.create_index(
        op.f("ix_conversation_owners_customer_id"), "conversation_owners", ["customer_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_owners_customer_id"), table_name="conversation_owners")
    op.drop_table("conversation_owners")
    op.drop_index(op.f("ix_verifications_gift_card_id"), table_name="verifications")
    op.drop_index(op.f("ix_verifications_conversation_id"), table_name="verifications")
    op.drop_table("verifications")
