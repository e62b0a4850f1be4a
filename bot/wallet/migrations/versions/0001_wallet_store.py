"""wallet store

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:15:51.837457
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_created_at"), ["created_at"], unique=False)

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_customers_email")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sealed_claim_code", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=19), nullable=False),
        sa.Column("purchaser_id", sa.Integer(), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("recipient_email", sa.String(length=254), nullable=True),
        sa.Column("shipping_address", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "recipient_email IS NOT NULL OR shipping_address IS NOT NULL",
            name=op.f("ck_orders_delivered_to"),
        ),
        sa.ForeignKeyConstraint(
            ["purchaser_id"], ["customers.id"], name=op.f("fk_orders_purchaser_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_purchaser_id"), ["purchaser_id"], unique=False)

    op.create_table(
        "gift_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=19), nullable=False),
        sa.Column("claim_code_hmac", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "state",
            sa.Enum("inactive", "active", "redeemed", "cancelled", name="card_state"),
            nullable=False,
        ),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("redeemed_by_id", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_gift_cards_positive_amount")),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_gift_cards_failed_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_gift_cards_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["redeemed_by_id"],
            ["customers.id"],
            name=op.f("fk_gift_cards_redeemed_by_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_cards")),
        sa.UniqueConstraint("claim_code_hmac", name=op.f("uq_gift_cards_claim_code_hmac")),
        sa.UniqueConstraint("serial", name=op.f("uq_gift_cards_serial")),
    )
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gift_cards_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_gift_cards_redeemed_by_id"), ["redeemed_by_id"], unique=False
        )

    op.create_table(
        "failed_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("gift_card_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_failed_attempts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_cards.id"],
            name=op.f("fk_failed_attempts_gift_card_id_gift_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_attempts")),
    )
    with op.batch_alter_table("failed_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_failed_attempts_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_failed_attempts_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_failed_attempts_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_failed_attempts_gift_card_id"), ["gift_card_id"], unique=False
        )

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("gift_card_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_ledger_entries_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_cards.id"],
            name=op.f("fk_ledger_entries_gift_card_id_gift_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("gift_card_id", name=op.f("uq_ledger_entries_gift_card_id")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "support_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("gift_card_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_support_cases_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_cards.id"],
            name=op.f("fk_support_cases_gift_card_id_gift_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_support_cases_reference")),
    )
    with op.batch_alter_table("support_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_cases_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "handoff_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("taken_by", sa.String(length=100), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["support_cases.id"],
            name=op.f("fk_handoff_requests_case_id_support_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_handoff_requests_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_requests")),
    )
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handoff_requests_conversation_id"), ["conversation_id"], unique=False
        )
        # At most one open request per conversation, even when requests race.
        batch_op.create_index(
            "uq_handoff_requests_open_conversation",
            ["conversation_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('waiting', 'taken')"),
            postgresql_where=sa.text("status IN ('waiting', 'taken')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_index("uq_handoff_requests_open_conversation")
        batch_op.drop_index(batch_op.f("ix_handoff_requests_conversation_id"))

    op.drop_table("handoff_requests")
    with op.batch_alter_table("support_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_cases_conversation_id"))

    op.drop_table("support_cases")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_customer_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("failed_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_failed_attempts_gift_card_id"))
        batch_op.drop_index(batch_op.f("ix_failed_attempts_customer_id"))
        batch_op.drop_index(batch_op.f("ix_failed_attempts_created_at"))
        batch_op.drop_index(batch_op.f("ix_failed_attempts_conversation_id"))

    op.drop_table("failed_attempts")
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gift_cards_redeemed_by_id"))
        batch_op.drop_index(batch_op.f("ix_gift_cards_order_id"))

    op.drop_table("gift_cards")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_purchaser_id"))

    op.drop_table("orders")
    op.drop_table("outbox")
    op.drop_table("customers")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_created_at"))

    op.drop_table("audit_log")
    # PostgreSQL keeps enum types after their table is dropped.
    sa.Enum(name="card_state").drop(op.get_bind(), checkfirst=True)
