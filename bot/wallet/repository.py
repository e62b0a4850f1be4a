"""The wallet store's only queries, named after what the caller wants.

Each method runs in its own short transaction (``with Session(engine) as s, s.begin():``) and
returns plain frozen views, never ORM objects, so callers cannot touch the database by accident.
"""

from __future__ import annotations

import enum
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot.wallet import codes
from bot.wallet.models import (
    AuditEntry,
    CardState,
    Customer,
    FailedAttempt,
    GiftCard,
    HandoffRequest,
    LedgerEntry,
    Order,
    OutboxEmail,
    SupportCase,
    utcnow,
)


class WalletError(Exception):
    """A request the store refuses; the message is one line, fit to show an operator."""


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


# ------------------------------------------------------------------------------- repository


class WalletRepository:
    def __init__(self, engine: Engine, claim_code_secret: bytes, sealing_key: str) -> None:
        self.engine = engine
        self._claim_code_secret = claim_code_secret
        self._sealing_key = sealing_key

    @classmethod
    def from_settings(cls) -> WalletRepository:
        from bot.settings import get_settings
        from bot.wallet.db import make_engine

        settings = get_settings()
        return cls(make_engine(settings.db_url), settings.claim_code_secret, settings.sealing_key)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, future=True) as session, session.begin():
            yield session

    def _hmac(self, claim_code: str) -> str:
        return codes.claim_code_hmac(claim_code, self._claim_code_secret)

    # ------------------------------------------------------------------------- customers

    def create_customer(self, name: str, email: str, actor: str = "system") -> CustomerView:
        name, email = name.strip(), email.strip().lower()
        if not name:
            raise WalletError("the customer's name must not be empty")
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise WalletError(f"not an email address: {email!r}")
        try:
            with self._transaction() as s:
                customer = Customer(name=name, email=email)
                s.add(customer)
                s.flush()
                _audit(s, actor, "customer.created", email, {})
                return _customer_view(customer)
        except IntegrityError as exc:
            raise WalletError(f"a customer with the email {email} already exists") from exc

    def find_customer_by_email(self, email: str) -> CustomerView | None:
        with self._transaction() as s:
            customer = s.execute(
                select(Customer).where(Customer.email == email.strip().lower())
            ).scalar_one_or_none()
            return _customer_view(customer) if customer else None

    def get_customer(self, customer_id: int) -> CustomerView | None:
        with self._transaction() as s:
            customer = s.get(Customer, customer_id)
            return _customer_view(customer) if customer else None

    def account_balance(self, customer_id: int) -> int:
        with self._transaction() as s:
            return _balance(s, customer_id)

    def ledger(self, customer_id: int) -> list[LedgerLine]:
        with self._transaction() as s:
            rows = s.execute(
                select(LedgerEntry, GiftCard.serial)
                .outerjoin(GiftCard, LedgerEntry.gift_card_id == GiftCard.id)
                .where(LedgerEntry.customer_id == customer_id)
                .order_by(LedgerEntry.created_at, LedgerEntry.id)
            ).all()
            return [
                LedgerLine(
                    amount_minor=entry.amount_minor,
                    currency=entry.currency,
                    kind=entry.kind,
                    reason=entry.reason,
                    masked_serial=codes.mask_serial(serial) if serial else None,
                    created_at=entry.created_at,
                )
                for entry, serial in rows
            ]

    def adjust_balance(
        self, customer_id: int, amount_minor: int, reason: str, actor: str, currency: str = "USD"
    ) -> int:
        """A manual credit or debit with a required reason; returns the new balance."""
        if not reason.strip():
            raise WalletError("a balance adjustment needs a reason")
        if amount_minor == 0:
            raise WalletError("a balance adjustment must not be zero")
        with self._transaction() as s:
            if s.get(Customer, customer_id) is None:
                raise WalletError(f"no customer with id {customer_id}")
            s.add(
                LedgerEntry(
                    customer_id=customer_id,
                    amount_minor=amount_minor,
                    currency=currency,
                    kind="adjustment",
                    reason=reason.strip(),
                    actor=actor,
                )
            )
            s.flush()
            balance = _balance(s, customer_id)
            if balance < 0:
                raise WalletError("the adjustment would make the balance negative")
            _audit(s, actor, "balance.adjusted", str(customer_id), {"amount_minor": amount_minor})
            return balance

    # ----------------------------------------------------------------------------- cards

    def issue_card(
        self,
        *,
        amount_minor: int,
        purchaser_email: str,
        recipient_name: str,
        recipient_email: str | None = None,
        shipping_address: str | None = None,
        currency: str = "USD",
        state: CardState = CardState.ACTIVE,
        actor: str = "system",
        serial: str | None = None,
        claim_code: str | None = None,
        order_number: str | None = None,
    ) -> IssuedCard:
        """Create the order and its card. Fixed serial/code/order are for the demo data only."""
        if amount_minor <= 0:
            raise WalletError("the amount must be more than zero")
        if not recipient_name.strip():
            raise WalletError("the recipient's name must not be empty")
        if not (recipient_email or shipping_address):
            raise WalletError("give the recipient's email or a shipping address")
        if recipient_email and "@" not in recipient_email:
            raise WalletError(f"not an email address: {recipient_email!r}")
        serial = codes.parse_serial(serial) if serial else codes.generate_serial()
        claim_code = (
            codes.parse_claim_code(claim_code) if claim_code else codes.generate_claim_code()
        )
        number = (
            codes.parse_order_number(order_number)
            if order_number
            else codes.generate_order_number(digital=shipping_address is None)
        )
        with self._transaction() as s:
            purchaser = s.execute(
                select(Customer).where(Customer.email == purchaser_email.strip().lower())
            ).scalar_one_or_none()
            if purchaser is None:
                raise WalletError(f"no customer with the email {purchaser_email}")
            order = Order(
                number=number,
                purchaser_id=purchaser.id,
                recipient_name=recipient_name.strip(),
                recipient_email=recipient_email.strip().lower() if recipient_email else None,
                shipping_address=shipping_address.strip() if shipping_address else None,
            )
            s.add(order)
            try:
                s.flush()
                card = GiftCard(
                    serial=serial,
                    claim_code_hmac=self._hmac(claim_code),
                    amount_minor=amount_minor,
                    currency=currency,
                    state=state,
                    order_id=order.id,
                    failed_attempts=0,
                )
                s.add(card)
                s.flush()
            except IntegrityError as exc:  # a generated value collided: vanishingly rare
                raise WalletError(
                    "that serial number, claim code or order number is already in use"
                ) from exc
            _audit(s, actor, "card.issued", codes.mask_serial(serial), {"order": number})
        return IssuedCard(serial, claim_code, number, amount_minor, currency)

    def find_card_by_serial(self, serial: str) -> CardView | None:
        with self._transaction() as s:
            card = s.execute(
                _card_query().where(GiftCard.serial == codes.parse_serial(serial))
            ).scalar_one_or_none()
            return _card_view(card) if card else None

    def set_card_state(self, serial: str, state: CardState, actor: str) -> CardView:
        with self._transaction() as s:
            card = s.execute(
                _card_query().where(GiftCard.serial == codes.parse_serial(serial))
            ).scalar_one_or_none()
            if card is None:
                raise WalletError("no card with that serial number")
            if card.state == CardState.REDEEMED:
                raise WalletError("a redeemed card cannot change state")
            card.state = state
            _audit(s, actor, f"card.{state.value}", codes.mask_serial(card.serial), {})
            s.flush()
            return _card_view(card)

    def lock_card(self, serial: str, actor: str) -> CardView:
        with self._transaction() as s:
            card = s.execute(
                _card_query().where(GiftCard.serial == codes.parse_serial(serial))
            ).scalar_one_or_none()
            if card is None:
                raise WalletError("no card with that serial number")
            card.locked_at = card.locked_at or utcnow()
            _audit(s, actor, "card.locked", codes.mask_serial(card.serial), {})
            s.flush()
            return _card_view(card)

    def claim_code_status(self, claim_code: str, customer_id: int | None) -> ClaimCodeStatus:
        """What would happen if ``customer_id`` redeemed this code now (nothing changes)."""
        with self._transaction() as s:
            card = s.execute(
                _card_query().where(GiftCard.claim_code_hmac == self._hmac(claim_code))
            ).scalar_one_or_none()
            return _status(card, customer_id)

    def redeem(self, claim_code: str, customer_id: int, actor: str) -> RedeemResult:
        """Apply a card to the customer's balance: exactly one concurrent caller credits it."""
        with self._transaction() as s:
            card = s.execute(
                _card_query().where(GiftCard.claim_code_hmac == self._hmac(claim_code))
            ).scalar_one_or_none()
            status = _status(card, customer_id)
            if card is None or status != ClaimCodeStatus.REDEEMABLE:
                return RedeemResult(status, False, _card_view(card) if card else None, None)
            now = utcnow()
            # The conditional update is the guard: a concurrent redemption blocks on the row and
            # then finds the state no longer active (PostgreSQL), or waits for the write lock
            # (SQLite); either way its rowcount is 0.
            won = s.execute(
                update(GiftCard)
                .where(
                    GiftCard.id == card.id,
                    GiftCard.state == CardState.ACTIVE,
                    GiftCard.locked_at.is_(None),
                )
                .values(state=CardState.REDEEMED, redeemed_by_id=customer_id, redeemed_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if won != 1:
                s.expire_all()
                card = s.execute(_card_query().where(GiftCard.id == card.id)).scalar_one()
                return RedeemResult(_status(card, customer_id), False, _card_view(card), None)
            s.add(
                LedgerEntry(
                    customer_id=customer_id,
                    amount_minor=card.amount_minor,
                    currency=card.currency,
                    kind="redemption",
                    gift_card_id=card.id,
                    actor=actor,
                )
            )
            _audit(s, actor, "card.redeemed", codes.mask_serial(card.serial), {"to": customer_id})
            s.flush()
            s.expire_all()
            card = s.execute(_card_query().where(GiftCard.id == card.id)).scalar_one()
            return RedeemResult(
                ClaimCodeStatus.REDEEMED_BY_YOU, True, _card_view(card), _balance(s, customer_id)
            )

    def replace_claim_code(
        self, card_id: int, actor: str, conversation_id: str | None
    ) -> Replacement:
        """Void the card's code, make a new one, and queue it (sealed) to the order's email."""
        with self._transaction() as s:
            card = s.execute(_card_query().where(GiftCard.id == card_id)).scalar_one_or_none()
            if card is None:
                raise WalletError(f"no card with id {card_id}")
            if card.state in (CardState.REDEEMED, CardState.CANCELLED):
                raise WalletError(f"a {card.state.value} card cannot get a new claim code")
            new_code = codes.generate_claim_code()
            card.claim_code_hmac = self._hmac(new_code)
            card.code_replaced_at = utcnow()
            view = _card_view(card)
            email = OutboxEmail(
                to_address=view.delivery_email,
                subject="Your replacement gift card claim code",
                body=(
                    f"Hello {view.recipient_name},\n\n"
                    f"Here is the new claim code for the gift card ending in {card.serial[-4:]} "
                    f"(order {view.order_number}):\n\n    {{claim_code}}\n\n"
                    "The old code no longer works. Gift card balances never expire.\n"
                ),
                sealed_claim_code=codes.seal_claim_code(new_code, self._sealing_key),
            )
            s.add(email)
            s.flush()
            _audit(
                s,
                actor,
                "card.code_replaced",
                view.masked_serial,
                {"conversation_id": conversation_id, "outbox_id": email.id},
            )
            return Replacement(sent_to=view.delivery_email, outbox_id=email.id)

    # ----------------------------------------------------------------- failed attempts

    def record_failed_attempt(
        self,
        *,
        kind: str,
        conversation_id: str,
        customer_id: int | None = None,
        card_id: int | None = None,
        lock_card_after: int | None = None,
    ) -> None:
        """Count a failure; a card is locked once it has ``lock_card_after`` failures."""
        with self._transaction() as s:
            s.add(
                FailedAttempt(
                    kind=kind,
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    gift_card_id=card_id,
                )
            )
            if card_id is None:
                return
            s.execute(
                update(GiftCard)
                .where(GiftCard.id == card_id)
                .values(failed_attempts=GiftCard.failed_attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if lock_card_after is not None:
                locked = s.execute(
                    update(GiftCard)
                    .where(
                        GiftCard.id == card_id,
                        GiftCard.failed_attempts >= lock_card_after,
                        GiftCard.locked_at.is_(None),
                    )
                    .values(locked_at=utcnow())
                    .execution_options(synchronize_session=False)
                ).rowcount
                if locked:
                    _audit(s, "bot", "card.locked", str(card_id), {"reason": kind})

    def failure_counts(
        self,
        *,
        conversation_id: str,
        customer_id: int | None,
        card_id: int | None,
        window: timedelta,
    ) -> FailureCounts:
        since = utcnow() - window

        def count(s: Session, *conditions: Any) -> int:
            return int(
                s.execute(
                    select(func.count(FailedAttempt.id)).where(
                        FailedAttempt.created_at >= since, *conditions
                    )
                ).scalar_one()
            )

        with self._transaction() as s:
            return FailureCounts(
                conversation=count(s, FailedAttempt.conversation_id == conversation_id),
                customer=count(s, FailedAttempt.customer_id == customer_id) if customer_id else 0,
                card=count(s, FailedAttempt.gift_card_id == card_id) if card_id else 0,
            )

    # ------------------------------------------------------------------ cases, handoffs

    def open_case(
        self,
        *,
        kind: str,
        conversation_id: str,
        details: dict[str, Any],
        customer_id: int | None = None,
        card_id: int | None = None,
        actor: str = "bot",
    ) -> str:
        """Open a support case; ``details`` must already be masked. Returns its reference."""
        reference = "GC-" + "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
        )
        with self._transaction() as s:
            s.add(
                SupportCase(
                    reference=reference,
                    kind=kind,
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    gift_card_id=card_id,
                    details=details,
                )
            )
            _audit(s, actor, "case.opened", reference, {"kind": kind})
        return reference

    def request_handoff(
        self,
        *,
        conversation_id: str,
        reason: str,
        channel: str,
        context: dict[str, Any],
        customer_id: int | None = None,
        case_reference: str | None = None,
    ) -> int:
        """Record that a conversation waits for an agent (one open request per conversation).

        A unique partial index enforces the "one open request"; losing that race means another
        call created it a moment ago, so the context is merged into that one instead.
        """
        try:
            return self._request_handoff(
                conversation_id, reason, channel, context, customer_id, case_reference
            )
        except IntegrityError:
            return self._request_handoff(
                conversation_id, reason, channel, context, customer_id, case_reference
            )

    def _request_handoff(
        self,
        conversation_id: str,
        reason: str,
        channel: str,
        context: dict[str, Any],
        customer_id: int | None,
        case_reference: str | None,
    ) -> int:
        with self._transaction() as s:
            existing = s.execute(
                select(HandoffRequest).where(
                    HandoffRequest.conversation_id == conversation_id,
                    HandoffRequest.status.in_(("waiting", "taken")),
                )
            ).scalar_one_or_none()
            case_id = None
            if case_reference:
                case_id = s.execute(
                    select(SupportCase.id).where(SupportCase.reference == case_reference)
                ).scalar_one_or_none()
            if existing is not None:
                existing.context = {**existing.context, **context}
                existing.case_id = existing.case_id or case_id
                return int(existing.id)
            request = HandoffRequest(
                conversation_id=conversation_id,
                reason=reason,
                channel=channel,
                customer_id=customer_id,
                case_id=case_id,
                context=context,
            )
            s.add(request)
            s.flush()
            _audit(s, "bot", "handoff.requested", conversation_id, {"reason": reason})
            return int(request.id)

    def open_handoff(self, conversation_id: str) -> dict[str, Any] | None:
        with self._transaction() as s:
            request = s.execute(
                select(HandoffRequest).where(
                    HandoffRequest.conversation_id == conversation_id,
                    HandoffRequest.status.in_(("waiting", "taken")),
                )
            ).scalar_one_or_none()
            if request is None:
                return None
            return {
                "id": request.id,
                "reason": request.reason,
                "status": request.status,
                "context": dict(request.context),
            }

    def case_details(self, reference: str) -> dict[str, Any] | None:
        with self._transaction() as s:
            case = s.execute(
                select(SupportCase).where(SupportCase.reference == reference)
            ).scalar_one_or_none()
            if case is None:
                return None
            return {"kind": case.kind, "status": case.status, "details": dict(case.details)}

    # -------------------------------------------------------------------------- outbox

    def outbox(self, to_address: str | None = None) -> list[OutboxView]:
        with self._transaction() as s:
            query = select(OutboxEmail).order_by(OutboxEmail.id)
            if to_address:
                query = query.where(OutboxEmail.to_address == to_address.strip().lower())
            return [
                OutboxView(
                    id=row.id,
                    to_address=row.to_address,
                    subject=row.subject,
                    body=row.body,
                    has_claim_code=row.sealed_claim_code is not None,
                    created_at=row.created_at,
                )
                for row in s.execute(query).scalars()
            ]

    def render_outbox_email(self, outbox_id: int) -> str:
        """The body as the mailer sends it, with the sealed claim code opened."""
        with self._transaction() as s:
            row = s.get(OutboxEmail, outbox_id)
            if row is None:
                raise WalletError(f"no outbox email with id {outbox_id}")
            if row.sealed_claim_code is None:
                return str(row.body)
            code = codes.unseal_claim_code(row.sealed_claim_code, self._sealing_key)
            return str(row.body).replace("{claim_code}", codes.format_claim_code(code))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._transaction() as s:
            rows = s.execute(
                select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            ).scalars()
            return [
                {
                    "actor": r.actor,
                    "action": r.action,
                    "subject": r.subject,
                    "details": dict(r.details),
                    "created_at": r.created_at,
                }
                for r in rows
            ]


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


def _audit(s: Session, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    s.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))
