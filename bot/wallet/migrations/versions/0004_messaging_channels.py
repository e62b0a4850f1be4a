"""messaging channels

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:20:00.000000

What the messaging channels (bot/channels/) share between Rasa instances: the platform message
ids already taken in (at most once), where each platform user's replies go and the options last
offered to them, account-linking links (single use) and the platform users linked to customers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_deliveries")),
        sa.UniqueConstraint("channel", "message_id", name=op.f("uq_channel_deliveries_channel")),
    )
    op.create_index(
        op.f("ix_channel_deliveries_received_at"), "channel_deliveries", ["received_at"]
    )
    op.create_table(
        "channel_conversations",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sender_id", name=op.f("pk_channel_conversations")),
    )
    op.create_table(
        "channel_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_links")),
    )
    op.create_table(
        "channel_bindings",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_channel_bindings_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("channel", "sender_id", name=op.f("pk_channel_bindings")),
    )
    op.create_index(op.f("ix_channel_bindings_customer_id"), "channel_bindings", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_channel_bindings_customer_id"), table_name="channel_bindings")
    op.drop_table("channel_bindings")
    op.drop_table("channel_links")
    op.drop_table("channel_conversations")
    op.drop_index(op.f("ix_channel_deliveries_received_at"), table_name="channel_deliveries")
    op.drop_table("channel_deliveries")
