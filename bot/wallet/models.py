"""Tables of the wallet store. The schema is created only by the Alembic migrations.

Money is in integer minor units (cents). Claim codes exist only as an HMAC. Card state and the
lock are separate: a locked card keeps its state, so unlocking it restores it unchanged.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry, relationship
from sqlalchemy.orm.decl_api import DeclarativeMeta

# Explicit constraint names, so that migrations are the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)


class Base(metaclass=DeclarativeMeta):
    """Declarative base in the form SQLAlchemy 1.4 documents for type checkers."""

    __abstract__ = True
    registry = mapper_registry
    metadata = mapper_registry.metadata
    __init__ = mapper_registry.constructor


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class HandoffStatus(str, enum.Enum):
    WAITING = "waiting"  # in the queue
    TAKEN = "taken"  # an agent has the conversation; the assistant is silent
    HANDED_BACK = "handed_back"  # the assistant has the conversation again


class CardState(str, enum.Enum):
    INACTIVE = "inactive"  # issued but not yet activated (e.g. not yet paid or shipped)
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    email = Column(String(254), nullable=False, unique=True)
    name = Column(String(200), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "recipient_email IS NOT NULL OR shipping_address IS NOT NULL", name="delivered_to"
        ),
    )
    id = Column(Integer, primary_key=True)
    number = Column(String(19), nullable=False, unique=True)
    purchaser_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    recipient_name = Column(String(200), nullable=False)
    recipient_email = Column(String(254))
    shipping_address = Column(Text)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    purchaser = relationship(Customer)


class GiftCard(Base):
    __tablename__ = "gift_cards"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="positive_amount"),
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),
    )
    id = Column(Integer, primary_key=True)
    serial = Column(String(19), nullable=False, unique=True)
    claim_code_hmac = Column(String(64), nullable=False, unique=True)
    amount_minor = Column(BigInteger, nullable=False)
    currency = Column(String(3), nullable=False, default="USD")
    state = Column(
        Enum(CardState, name="card_state", values_callable=lambda e: [m.value for m in e]),
        nullable=False,
        default=CardState.INACTIVE,
    )
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    redeemed_by_id = Column(ForeignKey("customers.id"), index=True)
    redeemed_at = Column(DateTime(timezone=True))
    failed_attempts = Column(Integer, nullable=False, default=0)
    locked_at = Column(DateTime(timezone=True))
    code_replaced_at = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    order = relationship(Order)
    redeemed_by = relationship(Customer)


class LedgerEntry(Base):
    """One movement of a customer's gift card balance; the balance is their sum."""

    __tablename__ = "ledger_entries"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    amount_minor = Column(BigInteger, nullable=False)
    currency = Column(String(3), nullable=False)
    kind = Column(String(20), nullable=False)  # "redemption" | "adjustment"
    # Unique: a card can be credited once, whatever races the application loses.
    gift_card_id = Column(ForeignKey("gift_cards.id"), unique=True)
    reason = Column(Text)
    actor = Column(String(100), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class FailedAttempt(Base):
    """A failed verification or claim-code attempt, counted per conversation/customer/card."""

    __tablename__ = "failed_attempts"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    customer_id = Column(ForeignKey("customers.id"), index=True)
    gift_card_id = Column(ForeignKey("gift_cards.id"), index=True)
    kind = Column(String(40), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)


class VerificationMethod(str, enum.Enum):
    """How a shopper proved a card theirs in a conversation (actions/verification.py)."""

    SIGNED_IN_OWNER = "signed_in_owner"  # the signed-in purchaser or recipient of its order
    ORDER_NUMBER = "order_number"  # gave the matching order number (balance check)
    ORDER_DETAILS = "order_details"  # all five damaged-card details matched


class Verification(Base):
    """A proof the action server recorded: the only record the agent console trusts.

    Slots travel through Rasa and can be forged by anyone who reaches the action server, so
    what a conversation proved lives here, written by the actions when they verify.
    """

    __tablename__ = "verifications"
    __table_args__ = (
        CheckConstraint(
            "method IN ('signed_in_owner', 'order_number', 'order_details')",
            name="method",
        ),
    )
    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    customer_id = Column(ForeignKey("customers.id"))
    gift_card_id = Column(ForeignKey("gift_cards.id"), nullable=False, index=True)
    method = Column(String(20), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class ConversationOwner(Base):
    """The customer who first signed in to a conversation; another customer's token is refused."""

    __tablename__ = "conversation_owners"
    conversation_id = Column(String(255), primary_key=True)
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class SupportCase(Base):
    __tablename__ = "support_cases"
    id = Column(Integer, primary_key=True)
    reference = Column(String(20), nullable=False, unique=True)
    kind = Column(String(40), nullable=False)
    status = Column(String(20), nullable=False, default="open")
    conversation_id = Column(String(255), index=True)
    customer_id = Column(ForeignKey("customers.id"))
    gift_card_id = Column(ForeignKey("gift_cards.id"))
    # Masked details only: never a claim code, serials as their last 4 digits.
    details = Column(JSON, nullable=False, default=dict)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    closed_at = Column(DateTime(timezone=True))
    closed_by = Column(String(100))  # the actor, e.g. "agent:sam"
    resolution = Column(Text)


class Agent(Base):
    """A support agent of the handoff console. The password exists only as an argon2id hash."""

    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("failed_sign_ins >= 0", name="failed_sign_ins_not_negative"),)
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(200), nullable=False)
    password_hash = Column(String(255), nullable=False)
    disabled = Column(Boolean, nullable=False, default=False)
    available = Column(Boolean, nullable=False, default=False)
    # Presence: while the agent's console is open its heartbeat keeps pushing this forward; once
    # it passes, the agent is away. NULL: no console keeps it (availability set directly in the store holds).
    present_until = Column(DateTime(timezone=True))
    # The account's sign-in ceiling: failures from every address, and when the latest one was.
    failed_sign_ins = Column(Integer, nullable=False, default=0)
    last_failed_sign_in_at = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class AgentSignInFailure(Base):
    """Failed sign-ins to one agent's account from one client (address, or IPv6 /64): the
    throttle that locks that client out without locking the agent out for everyone else."""

    __tablename__ = "agent_sign_in_failures"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures_not_negative"),)
    agent_id = Column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    client = Column(String(64), primary_key=True)
    failures = Column(Integer, nullable=False)
    last_failed_at = Column(DateTime(timezone=True), nullable=False)


class HandoffRequest(Base):
    __tablename__ = "handoff_requests"
    __table_args__ = (
        # At most one open request per conversation, even when requests race.
        Index(
            "uq_handoff_requests_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'taken')"),
            postgresql_where=text("status IN ('waiting', 'taken')"),
        ),
        CheckConstraint("status IN ('waiting', 'taken', 'handed_back')", name="status"),
    )
    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    reason = Column(String(60), nullable=False)
    channel = Column(String(40), nullable=False, default="unknown")
    customer_id = Column(ForeignKey("customers.id"))
    case_id = Column(ForeignKey("support_cases.id"))
    context = Column(JSON, nullable=False, default=dict)
    status = Column(String(20), nullable=False, default=HandoffStatus.WAITING.value)
    taken_by = Column(String(100), ForeignKey("agents.username"))
    taken_at = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    closed_at = Column(DateTime(timezone=True))


class HandoffNote(Base):
    """An agent's internal note on a handed-off conversation; the shopper never sees it."""

    __tablename__ = "handoff_notes"
    id = Column(Integer, primary_key=True)
    handoff_request_id = Column(ForeignKey("handoff_requests.id"), nullable=False, index=True)
    author = Column(String(64), ForeignKey("agents.username"), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class CaseEntry(Base):
    """A support case's history: an agent's internal note, or an email reply to the shopper
    (its text, and the outbox row that carries it)."""

    __tablename__ = "case_entries"
    __table_args__ = (CheckConstraint("kind IN ('note', 'email')", name="kind"),)
    id = Column(Integer, primary_key=True)
    case_id = Column(ForeignKey("support_cases.id"), nullable=False, index=True)
    kind = Column(String(10), nullable=False)
    author = Column(String(100), nullable=False)  # the actor, e.g. "agent:sam"
    text = Column(Text, nullable=False)
    outbox_id = Column(ForeignKey("outbox.id"))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class OutboxEmail(Base):
    """An email the store would send. A claim code in it is sealed (Fernet), never plain."""

    __tablename__ = "outbox"
    id = Column(Integer, primary_key=True)
    to_address = Column(String(254), nullable=False)
    subject = Column(String(200), nullable=False)
    body = Column(Text, nullable=False)
    sealed_claim_code = Column(Text)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at = Column(DateTime(timezone=True))


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    actor = Column(String(100), nullable=False)
    action = Column(String(60), nullable=False)
    subject = Column(String(100))
    details = Column(JSON, nullable=False, default=dict)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)


# ------------------------------------------------------------------------ messaging channels


class ChannelDelivery(Base):
    """A platform message id already taken in: redeliveries and retries are processed once."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (UniqueConstraint("channel", "message_id"),)
    id = Column(Integer, primary_key=True)
    channel = Column(String(40), nullable=False)
    message_id = Column(String(255), nullable=False)
    received_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)


class ChannelConversation(Base):
    """Where a platform user's replies go (e.g. a Teams service URL) and the options last
    offered to them, so that any Rasa instance can answer, map "2" back, or relay an agent."""

    __tablename__ = "channel_conversations"
    channel = Column(String(40), primary_key=True)
    sender_id = Column(String(255), primary_key=True)
    reference = Column(JSON, nullable=False, default=dict)
    options = Column(JSON, nullable=False, default=list)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class ChannelLink(Base):
    """An account-linking link sent to a platform user: single use, expiring."""

    __tablename__ = "channel_links"
    id = Column(String(64), primary_key=True)  # the signed token's jti
    channel = Column(String(40), nullable=False)
    sender_id = Column(String(255), nullable=False)
    expires_at = Column(DateTime(timezone=True), nullable=False)
    used_at = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class ChannelBinding(Base):
    """A platform user linked to a customer: they count as signed in until they unlink."""

    __tablename__ = "channel_bindings"
    channel = Column(String(40), primary_key=True)
    sender_id = Column(String(255), primary_key=True)
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    linked_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
