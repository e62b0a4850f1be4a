"""What every part of the repository shares: errors, transactions, row-to-view helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, joinedload

from bot.wallet import agents, codes
from bot.wallet.models import (
    Agent,
    AuditEntry,
    CardState,
    Customer,
    GiftCard,
    HandoffNote,
    HandoffRequest,
    HandoffStatus,
    LedgerEntry,
    Order,
    SupportCase,
    utcnow,
)
from bot.wallet.repository.views import (
    AgentView,
    CardView,
    CaseView,
    ClaimCodeStatus,
    CustomerView,
    HandoffView,
    NoteView,
)


class WalletError(Exception):
    """A request the store refuses; the message is one line, fit to show an operator."""


MAX_NOTE_LENGTH = 4000  # internal notes and case resolutions


class ConflictError(WalletError):
    """Someone got there first, or the request or case moved on: a web console's HTTP 409."""


class RepositoryBase:
    """The engine, the secrets and one short transaction per call; the parts build on it."""

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

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, future=True) as session, session.begin():
            yield session

    def _hmac(self, claim_code: str) -> str:
        return codes.claim_code_hmac(claim_code, self._claim_code_secret)


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
    # Locked for everyone only at the account's ceiling; a client's own lock is not the agent's.
    if last_failure and agent.failed_sign_ins >= agents.MAX_FAILED_SIGN_INS_PER_ACCOUNT:
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
