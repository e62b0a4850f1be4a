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
from datetime import datetime, timedelta, timezone
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot.wallet import agents, codes
from bot.wallet.models import (
    Agent,
    AuditEntry,
    CardState,
    Customer,
    FailedAttempt,
    GiftCard,
    HandoffNote,
    HandoffRequest,
    HandoffStatus,
    LedgerEntry,
    Order,
    OutboxEmail,
    SupportCase,
    utcnow,
)


class WalletError(Exception):
    """A request the store refuses; the message is one line, fit to show an operator."""


MAX_NOTE_LENGTH = 4000  # internal notes and case resolutions


class ConflictError(WalletError):
    """Someone got there first, or the request or case moved on: a web console's HTTP 409."""


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
class AgentView:
    """An agent as the console and the CLI see one: never the password hash."""

    id: int
    username: str
    display_name: str
    disabled: bool
    available: bool
    locked_until: datetime | None
    """Set while sign-in is refused after too many failed attempts."""
    created_at: datetime

    @property
    def actor(self) -> str:
        return agents.agent_actor(self.username)


@dataclass(frozen=True)
class HandoffView:
    """A handoff request as the console's queue and conversation pages show it (masked)."""

    id: int
    conversation_id: str
    status: HandoffStatus
    reason: str
    channel: str
    customer_id: int | None
    case_reference: str | None
    context: dict[str, Any]
    """What the assistant collected and tried: masked serial, verification state, ..."""
    created_at: datetime
    taken_by: str | None
    taken_at: datetime | None
    closed_at: datetime | None

    @property
    def signed_in(self) -> bool:
        return self.customer_id is not None

    def waited(self, now: datetime | None = None) -> timedelta:
        """How long the shopper waited for an agent: until taken, else until ``now``."""
        return (self.taken_at or now or utcnow()) - self.created_at


@dataclass(frozen=True)
class NoteView:
    id: int
    request_id: int
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class CaseView:
    reference: str
    kind: str
    status: str
    details: dict[str, Any]
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    resolution: str | None


# ------------------------------------------------------------------------------- repository


class WalletRepository:
    def __init__(
        self,
        engine: Engine,
        claim_code_secret: bytes,
        sealing_key: str,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        self.engine = engine
        self._claim_code_secret = claim_code_secret
        self._sealing_key = sealing_key
        self._hasher = password_hasher or agents.default_password_hasher()
        self._dummy_hash: str | None = None

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

    def add_case_contact(self, reference: str, email: str, actor: str = "bot") -> None:
        """Record the address at which support will answer a case by email."""
        email = email.strip().lower()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise WalletError(f"not an email address: {email!r}")
        with self._transaction() as s:
            case = s.execute(
                select(SupportCase).where(SupportCase.reference == reference)
            ).scalar_one_or_none()
            if case is None:
                raise WalletError(f"no case {reference}")
            case.details = {**case.details, "contact_email": email}
            _audit(s, actor, "case.contact_added", reference, {})

    def case_details(self, reference: str) -> dict[str, Any] | None:
        with self._transaction() as s:
            case = s.execute(
                select(SupportCase).where(SupportCase.reference == reference)
            ).scalar_one_or_none()
            if case is None:
                return None
            return {"kind": case.kind, "status": case.status, "details": dict(case.details)}

    # ---------------------------------------------------------------------------- agents

    def create_agent(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        actor: str = "system",
    ) -> AgentView:
        """Add a console agent; the password is kept only as its argon2id hash."""
        try:
            username = agents.parse_username(username)
            display_name = agents.parse_display_name(display_name, username)
            agents.check_password(password, username)
        except agents.AgentInputError as exc:
            raise WalletError(str(exc)) from exc
        duplicate = WalletError(f"an agent with the username {username} already exists")
        if self.find_agent(username) is not None:  # spares a slow hash; the index decides
            raise duplicate
        password_hash = self._hasher.hash(password)
        try:
            with self._transaction() as s:
                agent = Agent(
                    username=username,
                    display_name=display_name,
                    password_hash=password_hash,
                    disabled=False,
                    available=False,
                    failed_sign_ins=0,
                )
                s.add(agent)
                s.flush()
                _audit(s, actor, "agent.created", username, {"display_name": display_name})
                return _agent_view(agent)
        except IntegrityError as exc:
            raise duplicate from exc

    def find_agent(self, username: str) -> AgentView | None:
        with self._transaction() as s:
            agent = _find_agent(s, username)
            return _agent_view(agent) if agent else None

    def list_agents(self) -> list[AgentView]:
        with self._transaction() as s:
            rows = s.execute(select(Agent).order_by(Agent.username)).scalars()
            return [_agent_view(agent) for agent in rows]

    def available_agents(self) -> list[AgentView]:
        """Agents who said they can take conversations now (none: the no-agent path)."""
        with self._transaction() as s:
            rows = s.execute(
                select(Agent)
                .where(Agent.available.is_(True), Agent.disabled.is_(False))
                .order_by(Agent.username)
            ).scalars()
            return [_agent_view(agent) for agent in rows]

    def disable_agent(self, username: str, actor: str = "system") -> AgentView:
        """Refuse the agent's sign-ins from now on; they are no longer available either."""
        return self._set_disabled(username, True, actor)

    def enable_agent(self, username: str, actor: str = "system") -> AgentView:
        return self._set_disabled(username, False, actor)

    def _set_disabled(self, username: str, disabled: bool, actor: str) -> AgentView:
        with self._transaction() as s:
            agent = _find_agent(s, username)
            if agent is None:
                raise WalletError(f"no agent with the username {username.strip()}")
            if agent.disabled != disabled:
                agent.disabled = disabled
                agent.available = False
                action = "agent.disabled" if disabled else "agent.enabled"
                _audit(s, actor, action, agent.username, {})
                s.flush()
            return _agent_view(agent)

    def set_agent_available(self, username: str, available: bool) -> AgentView:
        with self._transaction() as s:
            agent = _enabled_agent(s, username)
            if agent.available != available:
                agent.available = available
                _audit(
                    s,
                    _actor(agent),
                    "agent.availability",
                    agent.username,
                    {"available": available},
                )
                s.flush()
            return _agent_view(agent)

    def verify_agent_password(self, username: str, password: str) -> AgentView | None:
        """The agent when the password is right and sign-in is allowed, else None.

        Unknown, disabled, throttled and wrong all give None after one hash verification each,
        so neither the answer nor its timing tells them apart. An attempt counts as a failure
        *before* the slow verification and is forgiven when it succeeds: parallel guesses
        cannot outrun the throttle.
        """
        name = username.strip().lower()
        now = utcnow()
        window_start = now - agents.SIGN_IN_LOCKOUT
        quiet = or_(
            Agent.last_failed_sign_in_at.is_(None), Agent.last_failed_sign_in_at < window_start
        )
        with self._transaction() as s:
            stored = s.execute(
                select(Agent.password_hash).where(Agent.username == name)
            ).scalar_one_or_none()
            # The conditional update is the throttle: it fails for a disabled or locked agent.
            reserved = stored is not None and (
                s.execute(
                    update(Agent)
                    .where(
                        Agent.username == name,
                        Agent.disabled.is_(False),
                        or_(Agent.failed_sign_ins < agents.MAX_FAILED_SIGN_INS, quiet),
                    )
                    .values(
                        failed_sign_ins=case((quiet, 1), else_=Agent.failed_sign_ins + 1),
                        last_failed_sign_in_at=now,
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
                == 1
            )
        if stored is None or not reserved:
            agents.password_matches(self._hasher, self._dummy(), password)
            return None
        matches = agents.password_matches(self._hasher, stored, password)
        new_hash = (
            self._hasher.hash(password)
            if matches and self._hasher.check_needs_rehash(stored)
            else None
        )
        with self._transaction() as s:
            agent = s.execute(select(Agent).where(Agent.username == name)).scalar_one()
            if not matches:
                locked = agent.failed_sign_ins >= agents.MAX_FAILED_SIGN_INS
                _audit(
                    s,
                    "anonymous",
                    "agent.sign_in_failed",
                    name,
                    {"failed_sign_ins": agent.failed_sign_ins, "locked": locked},
                )
                return None
            if agent.disabled:  # disabled while the hash was being checked
                return None
            agent.failed_sign_ins = 0
            agent.last_failed_sign_in_at = None
            if new_hash and agent.password_hash == stored:
                agent.password_hash = new_hash
            _audit(s, _actor(agent), "agent.signed_in", name, {"rehashed": bool(new_hash)})
            s.flush()
            return _agent_view(agent)

    def _dummy(self) -> str:
        """A hash with the hasher's parameters, checked when there is no real one to check."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # --------------------------------------------------------------- the handoff console

    def waiting_handoffs(self) -> list[HandoffView]:
        """The queue, oldest first."""
        with self._transaction() as s:
            rows = s.execute(
                _handoff_query()
                .where(HandoffRequest.status == HandoffStatus.WAITING.value)
                .order_by(HandoffRequest.created_at, HandoffRequest.id)
            ).all()
            return [_handoff_view(request, reference) for request, reference in rows]

    def handoffs_taken_by(self, agent_username: str) -> list[HandoffView]:
        """The conversations an agent has now, in the order they took them."""
        with self._transaction() as s:
            rows = s.execute(
                _handoff_query()
                .where(
                    HandoffRequest.status == HandoffStatus.TAKEN.value,
                    HandoffRequest.taken_by == agent_username.strip().lower(),
                )
                .order_by(HandoffRequest.taken_at, HandoffRequest.id)
            ).all()
            return [_handoff_view(request, reference) for request, reference in rows]

    def get_handoff(self, request_id: int) -> HandoffView | None:
        with self._transaction() as s:
            row = s.execute(_handoff_query().where(HandoffRequest.id == request_id)).one_or_none()
            return _handoff_view(*row) if row else None

    def queue_position(self, conversation_id: str) -> int | None:
        """1 for the next conversation an agent takes; None when this one is not waiting."""
        waiting = HandoffRequest.status == HandoffStatus.WAITING.value
        with self._transaction() as s:
            mine = s.execute(
                select(HandoffRequest.created_at, HandoffRequest.id).where(
                    HandoffRequest.conversation_id == conversation_id, waiting
                )
            ).one_or_none()
            if mine is None:
                return None
            ahead = s.execute(
                select(func.count(HandoffRequest.id)).where(
                    waiting,
                    or_(
                        HandoffRequest.created_at < mine.created_at,
                        and_(
                            HandoffRequest.created_at == mine.created_at,
                            HandoffRequest.id < mine.id,
                        ),
                    ),
                )
            ).scalar_one()
            return int(ahead) + 1

    def handoff_verified_card(self, request_id: int) -> CardView | None:
        """The card the shopper proved theirs before this handoff (the assistant's context)."""
        with self._transaction() as s:
            request = s.get(HandoffRequest, request_id)
            verification = (request.context or {}).get("verification") if request else None
            card_id = verification.get("card_id") if isinstance(verification, dict) else None
            if not isinstance(card_id, int):
                return None
            card = s.execute(_card_query().where(GiftCard.id == card_id)).scalar_one_or_none()
            return _card_view(card) if card else None

    def take_handoff(self, request_id: int, agent_username: str) -> HandoffView:
        """Give a waiting conversation to an agent: of agents racing, exactly one gets it."""
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            # The conditional update is the guard, as in redeem(): a racing take blocks on the
            # row (PostgreSQL) or the write lock (SQLite), then finds it taken: rowcount 0.
            won = s.execute(
                update(HandoffRequest)
                .where(
                    HandoffRequest.id == request_id,
                    HandoffRequest.status == HandoffStatus.WAITING.value,
                )
                .values(
                    status=HandoffStatus.TAKEN.value, taken_by=agent.username, taken_at=utcnow()
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            request, case_reference = _handoff_row(s, request_id)
            if won != 1:
                raise _handoff_conflict(request, agent.username)
            _audit(
                s,
                _actor(agent),
                "handoff.taken",
                request.conversation_id,
                {"request_id": request_id},
            )
            return _handoff_view(request, case_reference)

    def hand_back(self, request_id: int, agent_username: str) -> HandoffView:
        """The assistant has the conversation again; only the agent who took it hands it back."""
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            done = s.execute(
                update(HandoffRequest)
                .where(
                    HandoffRequest.id == request_id,
                    HandoffRequest.status == HandoffStatus.TAKEN.value,
                    HandoffRequest.taken_by == agent.username,
                )
                .values(status=HandoffStatus.HANDED_BACK.value, closed_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            request, case_reference = _handoff_row(s, request_id)
            if done != 1:
                raise _handoff_conflict(request, agent.username)
            _audit(
                s,
                _actor(agent),
                "handoff.handed_back",
                request.conversation_id,
                {"request_id": request_id},
            )
            return _handoff_view(request, case_reference)

    def add_internal_note(self, request_id: int, agent_username: str, text: str) -> NoteView:
        """A note for agents only. Claim codes and full serials in it are masked."""
        text = _masked(text.strip())
        if not text:
            raise WalletError("a note must not be empty")
        if len(text) > MAX_NOTE_LENGTH:
            raise WalletError(f"a note has at most {MAX_NOTE_LENGTH} characters")
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            request, _ = _handoff_row(s, request_id)
            note = HandoffNote(handoff_request_id=request_id, author=agent.username, text=text)
            s.add(note)
            s.flush()
            _audit(
                s,
                _actor(agent),
                "handoff.note_added",
                request.conversation_id,
                {"request_id": request_id, "note_id": note.id},
            )
            return _note_view(note)

    def notes(self, request_id: int) -> list[NoteView]:
        with self._transaction() as s:
            rows = s.execute(
                select(HandoffNote)
                .where(HandoffNote.handoff_request_id == request_id)
                .order_by(HandoffNote.created_at, HandoffNote.id)
            ).scalars()
            return [_note_view(note) for note in rows]

    def close_case(self, reference: str, agent_username: str, resolution: str) -> CaseView:
        """Resolve an open support case. Claim codes and full serials in the text are masked."""
        resolution = _masked(resolution.strip())
        if not resolution:
            raise WalletError("closing a case needs a resolution")
        if len(resolution) > MAX_NOTE_LENGTH:
            raise WalletError(f"a resolution has at most {MAX_NOTE_LENGTH} characters")
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            case_ = s.execute(
                select(SupportCase).where(SupportCase.reference == reference.strip().upper())
            ).scalar_one_or_none()
            if case_ is None:
                raise WalletError(f"no case with the reference {reference.strip()}")
            closed = s.execute(
                update(SupportCase)
                .where(SupportCase.id == case_.id, SupportCase.status == "open")
                .values(
                    status="closed",
                    closed_at=utcnow(),
                    closed_by=_actor(agent),
                    resolution=resolution,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if closed != 1:
                raise ConflictError(f"the case {case_.reference} is already {case_.status}")
            _audit(s, _actor(agent), "case.closed", case_.reference, {"resolution": resolution})
            s.refresh(case_)
            return _case_view(case_)

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


def _actor(agent: Agent) -> str:
    return agents.agent_actor(agent.username)


def _find_agent(s: Session, username: str) -> Agent | None:
    return s.execute(
        select(Agent).where(Agent.username == username.strip().lower())
    ).scalar_one_or_none()


def _enabled_agent(s: Session, username: str) -> Agent:
    agent = _find_agent(s, username)
    if agent is None:
        raise WalletError(f"no agent with the username {username.strip()}")
    if agent.disabled:
        raise WalletError(f"the agent {agent.username} is disabled")
    return agent


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the views carry aware UTC ones on every backend."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _agent_view(agent: Agent) -> AgentView:
    last_failure = _utc_or_none(agent.last_failed_sign_in_at)
    locked_until = None
    if last_failure and agent.failed_sign_ins >= agents.MAX_FAILED_SIGN_INS:
        until = last_failure + agents.SIGN_IN_LOCKOUT
        locked_until = until if until > utcnow() else None
    return AgentView(
        id=agent.id,
        username=agent.username,
        display_name=agent.display_name,
        disabled=bool(agent.disabled),
        available=bool(agent.available),
        locked_until=locked_until,
        created_at=_utc(agent.created_at),
    )


def _handoff_query() -> Any:
    return select(HandoffRequest, SupportCase.reference).outerjoin(
        SupportCase, HandoffRequest.case_id == SupportCase.id
    )


def _handoff_row(s: Session, request_id: int) -> tuple[HandoffRequest, str | None]:
    s.expire_all()  # after a bulk update, read the row as it is now
    row = s.execute(_handoff_query().where(HandoffRequest.id == request_id)).one_or_none()
    if row is None:
        raise WalletError(f"no handoff request with id {request_id}")
    return row[0], row[1]


def _handoff_conflict(request: HandoffRequest, username: str) -> ConflictError:
    if request.status == HandoffStatus.TAKEN.value:
        who = "you" if request.taken_by == username else request.taken_by
        return ConflictError(f"the conversation was already taken by {who}")
    return ConflictError(f"the conversation is {request.status.replace('_', ' ')}")


def _handoff_view(request: HandoffRequest, case_reference: str | None) -> HandoffView:
    return HandoffView(
        id=request.id,
        conversation_id=request.conversation_id,
        status=HandoffStatus(request.status),
        reason=request.reason,
        channel=request.channel,
        customer_id=request.customer_id,
        case_reference=case_reference,
        context=dict(request.context),
        created_at=_utc(request.created_at),
        taken_by=request.taken_by,
        taken_at=_utc_or_none(request.taken_at),
        closed_at=_utc_or_none(request.closed_at),
    )


def _note_view(note: HandoffNote) -> NoteView:
    return NoteView(note.id, note.handoff_request_id, note.author, note.text, _utc(note.created_at))


def _case_view(case_: SupportCase) -> CaseView:
    return CaseView(
        reference=case_.reference,
        kind=case_.kind,
        status=case_.status,
        details=dict(case_.details),
        created_at=_utc(case_.created_at),
        closed_at=_utc_or_none(case_.closed_at),
        closed_by=case_.closed_by,
        resolution=case_.resolution,
    )


def _masked(text: str) -> str:
    """Free text an agent typed, with claim codes hidden and serials cut to their last 4."""
    for found in reversed(codes.find_codes(text)):
        if found.label == "claim_code":
            replacement = codes.MASKED_CLAIM_CODE
        elif found.label == "serial_number":
            replacement = codes.mask_serial(found.value)
        else:
            continue
        text = text[: found.start] + replacement + text[found.end :]
    return text


def _audit(s: Session, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    s.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))
