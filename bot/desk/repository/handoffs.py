"""Handoff requests and the agent console's queue: taking over, notes, handing back, and
what happens to them when agents leave."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.desk import agents
from bot.desk.repository.rows import (
    MAX_NOTE_LENGTH,
    _actor,
    _enabled_agent,
    _handoff_conflict,
    _handoff_query,
    _handoff_row,
    _handoff_view,
    _masked,
    _note_view,
    new_case_reference,
)
from bot.desk.views import HandoffView, NoteView
from bot.wallet.models import (
    Agent,
    HandoffNote,
    HandoffRequest,
    HandoffStatus,
    SupportCase,
    utcnow,
)
from bot.wallet.store import RepositoryBase, WalletError, _audit


class HandoffsRepository(RepositoryBase):
    # ------------------------------------------------------------------ cases, handoffs

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

    # ------------------------------------------------------------- when agents go away

    def untake_handoff(self, request_id: int, agent_username: str, why: str) -> HandoffView:
        """Undo a take whose pause never reached the conversation (Rasa was down): the
        conversation waits again, first in line as before."""
        with self._transaction() as s:
            done = s.execute(
                update(HandoffRequest)
                .where(
                    HandoffRequest.id == request_id,
                    HandoffRequest.status == HandoffStatus.TAKEN.value,
                    HandoffRequest.taken_by == agent_username.strip().lower(),
                )
                .values(status=HandoffStatus.WAITING.value, taken_by=None, taken_at=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            request, case_reference = _handoff_row(s, request_id)
            if done == 1:
                _audit(
                    s,
                    agents.agent_actor(agent_username.strip().lower()),
                    "handoff.take_undone",
                    request.conversation_id,
                    {"request_id": request_id, "why": why},
                )
            return _handoff_view(request, case_reference)

    def return_handoffs_of(self, agent_username: str, why: str) -> list[HandoffView]:
        """An agent signed out, was disabled or went away: their conversations wait again
        (with their notes), oldest request first in the queue as before."""
        name = agent_username.strip().lower()
        with self._transaction() as s:
            ids = list(
                s.execute(
                    select(HandoffRequest.id).where(
                        HandoffRequest.status == HandoffStatus.TAKEN.value,
                        HandoffRequest.taken_by == name,
                    )
                ).scalars()
            )
            returned = []
            for request_id in ids:
                done = s.execute(
                    update(HandoffRequest)
                    .where(
                        HandoffRequest.id == request_id,
                        HandoffRequest.status == HandoffStatus.TAKEN.value,
                        HandoffRequest.taken_by == name,
                    )
                    .values(status=HandoffStatus.WAITING.value, taken_by=None, taken_at=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if done != 1:
                    continue
                request, case_reference = _handoff_row(s, request_id)
                _audit(
                    s,
                    "system",
                    "handoff.returned_to_queue",
                    request.conversation_id,
                    {"request_id": request_id, "agent": name, "why": why},
                )
                returned.append(_handoff_view(request, case_reference))
            return returned

    def move_waiting_to_cases(self) -> list[tuple[HandoffView, str]]:
        """No agent is available any more: each waiting conversation becomes a case answered
        by email (its context kept), and the request is closed. Returns each request with its
        case reference; nothing when an agent is available after all."""
        now = utcnow()
        with self._transaction() as s:
            present = s.execute(
                select(func.count(Agent.id)).where(
                    Agent.available.is_(True),
                    Agent.disabled.is_(False),
                    or_(Agent.present_until.is_(None), Agent.present_until > now),
                )
            ).scalar_one()
            if present:
                return []
            rows = s.execute(
                select(HandoffRequest)
                .where(HandoffRequest.status == HandoffStatus.WAITING.value)
                .order_by(HandoffRequest.created_at, HandoffRequest.id)
            ).scalars()
            moved = []
            for request in list(rows):
                done = s.execute(
                    update(HandoffRequest)
                    .where(
                        HandoffRequest.id == request.id,
                        HandoffRequest.status == HandoffStatus.WAITING.value,
                    )
                    .values(status=HandoffStatus.HANDED_BACK.value, closed_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if done != 1:
                    continue
                case_ = s.get(SupportCase, request.case_id) if request.case_id else None
                if case_ is None or case_.status != "open":
                    case_ = SupportCase(
                        reference=new_case_reference(),
                        kind=f"handoff_{request.reason}",
                        conversation_id=request.conversation_id,
                        customer_id=request.customer_id,
                        details=dict(request.context),
                    )
                    s.add(case_)
                    s.flush()
                    _audit(s, "system", "case.opened", case_.reference, {"kind": case_.kind})
                    request.case_id = case_.id
                _audit(
                    s,
                    "system",
                    "handoff.moved_to_case",
                    request.conversation_id,
                    {"request_id": request.id, "case": case_.reference},
                )
                s.flush()
                moved.append((_handoff_view(*_handoff_row(s, request.id)), case_.reference))
            return moved
