"""Support cases, handoff requests and the agent console's queue."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.wallet.models import (
    HandoffNote,
    HandoffRequest,
    HandoffStatus,
    SupportCase,
    utcnow,
)
from bot.wallet.repository.base import (
    MAX_NOTE_LENGTH,
    ConflictError,
    RepositoryBase,
    WalletError,
    _actor,
    _audit,
    _case_view,
    _enabled_agent,
    _handoff_conflict,
    _handoff_query,
    _handoff_row,
    _handoff_view,
    _masked,
    _note_view,
)
from bot.wallet.repository.views import (
    CaseView,
    HandoffView,
    NoteView,
)


class HandoffsRepository(RepositoryBase):
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
