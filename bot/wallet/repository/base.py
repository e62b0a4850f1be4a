"""The wallet's parts share these: the store's base (``bot.wallet.store``) and row-to-view helpers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bot.wallet.models import (
    CardState,
    Customer,
    GiftCard,
    LedgerEntry,
    Order,
)
from bot.wallet.repository.views import (
    CardView,
    ClaimCodeStatus,
    CustomerView,
)
from bot.wallet.store import (  # noqa: F401  (the wallet's parts import them from here)
    ConflictError,
    RepositoryBase,
    WalletError,
    _audit,
    _utc,
    _utc_or_none,
)

# ------------------------------------------------------------------------------- helpers


def _card_query() -> Any:
    return select(GiftCard).options(
        joinedload(GiftCard.order).joinedload(Order.purchaser), joinedload(GiftCard.redeemed_by)
    )


def _balance(s: Session, customer_id: int) -> int:
    total = s.execute(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.customer_id == customer_id
        )
    ).scalar_one()
    return int(total)


def _status(card: GiftCard | None, customer_id: int | None) -> ClaimCodeStatus:
    if card is None:
        return ClaimCodeStatus.NOT_FOUND
    if card.locked_at is not None:
        return ClaimCodeStatus.LOCKED
    if card.state == CardState.REDEEMED:
        if customer_id is not None and card.redeemed_by_id == customer_id:
            return ClaimCodeStatus.REDEEMED_BY_YOU
        return ClaimCodeStatus.REDEEMED_ELSEWHERE
    if card.state == CardState.INACTIVE:
        return ClaimCodeStatus.NOT_ACTIVATED
    if card.state == CardState.CANCELLED:
        return ClaimCodeStatus.CANCELLED
    return ClaimCodeStatus.REDEEMABLE


def _customer_view(customer: Customer) -> CustomerView:
    return CustomerView(id=customer.id, name=customer.name, email=customer.email)


def _card_view(card: GiftCard) -> CardView:
    order = card.order
    return CardView(
        id=card.id,
        serial=card.serial,
        amount_minor=card.amount_minor,
        currency=card.currency,
        state=CardState(card.state),
        locked=card.locked_at is not None,
        failed_attempts=card.failed_attempts,
        order_number=order.number,
        purchaser_id=order.purchaser_id,
        purchaser_name=order.purchaser.name,
        purchaser_email=order.purchaser.email,
        recipient_name=order.recipient_name,
        recipient_email=order.recipient_email,
        shipping_address=order.shipping_address,
        redeemed_by_id=card.redeemed_by_id,
        redeemed_by_email=card.redeemed_by.email if card.redeemed_by else None,
        redeemed_at=card.redeemed_at,
    )
