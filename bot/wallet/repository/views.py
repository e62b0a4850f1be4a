"""Frozen views the repository returns: plain data, never ORM objects."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from bot.wallet import codes
from bot.wallet.models import CardState, VerificationMethod

# ------------------------------------------------------------------------------------ views


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class CardView:
    id: int
    serial: str
    amount_minor: int
    currency: str
    state: CardState
    locked: bool
    failed_attempts: int
    order_number: str
    purchaser_id: int
    purchaser_name: str
    purchaser_email: str
    recipient_name: str
    recipient_email: str | None
    shipping_address: str | None
    redeemed_by_id: int | None
    redeemed_by_email: str | None
    redeemed_at: datetime | None

    @property
    def display_state(self) -> str:
        return "locked" if self.locked else self.state.value

    @property
    def masked_serial(self) -> str:
        return codes.mask_serial(self.serial)

    @property
    def delivery_email(self) -> str:
        """Where email about this card goes: the recipient's address, else the purchaser's."""
        return self.recipient_email or self.purchaser_email


@dataclass(frozen=True)
class IssuedCard:
    serial: str
    claim_code: str
    """Shown once, at issue; the store keeps only its HMAC."""
    order_number: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class LedgerLine:
    amount_minor: int
    currency: str
    kind: str
    reason: str | None
    masked_serial: str | None
    created_at: datetime


class ClaimCodeStatus(str, enum.Enum):
    REDEEMABLE = "redeemable"
    REDEEMED_BY_YOU = "redeemed_by_you"
    REDEEMED_ELSEWHERE = "redeemed_elsewhere"
    NOT_ACTIVATED = "not_activated"
    CANCELLED = "cancelled"
    LOCKED = "locked"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class RedeemResult:
    status: ClaimCodeStatus
    redeemed: bool
    """True only for the one call that credited the card."""
    card: CardView | None
    balance_minor: int | None


@dataclass(frozen=True)
class FailureCounts:
    conversation: int
    customer: int
    card: int


@dataclass(frozen=True)
class Replacement:
    sent_to: str
    outbox_id: int


@dataclass(frozen=True)
class OutboxView:
    id: int
    to_address: str
    subject: str
    body: str
    has_claim_code: bool
    created_at: datetime


@dataclass(frozen=True)
class VerificationView:
    """A proof the action server recorded: which card, how, for whom, in which conversation."""

    card: CardView
    method: VerificationMethod
    customer_id: int | None
    conversation_id: str
    created_at: datetime

    @property
    def summary(self) -> str:
        """How the console and a handoff's context describe it (serial masked)."""
        return f"card {self.card.masked_serial} verified by {METHOD_LABELS[self.method]}"


METHOD_LABELS = {
    VerificationMethod.SIGNED_IN_OWNER: "signed-in owner",
    VerificationMethod.ORDER_NUMBER: "order number",
    VerificationMethod.ORDER_DETAILS: "order details",
}
