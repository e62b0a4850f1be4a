"""Customers, cards, redemption, the ledger, failed attempts, the outbox and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.wallet import codes
from bot.wallet.models import (
    AuditEntry,
    CardState,
    Customer,
    FailedAttempt,
    GiftCard,
    LedgerEntry,
    Order,
    OutboxEmail,
    utcnow,
)
from bot.wallet.repository.base import (
    RepositoryBase,
    WalletError,
    _audit,
    _balance,
    _card_query,
    _card_view,
    _customer_view,
    _status,
)
from bot.wallet.repository.views import (
    CardView,
    ClaimCodeStatus,
    CustomerView,
    FailureCounts,
    IssuedCard,
    LedgerLine,
    OutboxView,
    RedeemResult,
    Replacement,
)


class CardsRepository(RepositoryBase):
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
            _audit(
                s,
                actor,
                "balance.adjusted",
                str(customer_id),
                {"amount_minor": amount_minor, "reason": reason.strip()},
            )
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
        """Count a failure against the conversation, customer and card.

        With ``lock_card_after`` the failure also counts toward the card's lock (its
        ``failed_attempts``), which closes at that many: only failures that may lock a card
        (wrong claim codes) pass it, so that failed verifications by strangers never do.
        """
        with self._transaction() as s:
            s.add(
                FailedAttempt(
                    kind=kind,
                    conversation_id=conversation_id,
                    customer_id=customer_id,
                    gift_card_id=card_id,
                )
            )
            if card_id is None or lock_card_after is None:
                return
            s.execute(
                update(GiftCard)
                .where(GiftCard.id == card_id)
                .values(failed_attempts=GiftCard.failed_attempts + 1)
                .execution_options(synchronize_session=False)
            )
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
