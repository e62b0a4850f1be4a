"""Row-to-view helpers and lookups the desk's repository parts share."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import agents
from bot.desk.views import AgentView, CaseView, HandoffView, NoteView
from bot.wallet import codes
from bot.wallet.models import (
    Agent,
    HandoffNote,
    HandoffRequest,
    HandoffStatus,
    SupportCase,
    utcnow,
)
from bot.wallet.store import ConflictError, WalletError, _utc, _utc_or_none

MAX_NOTE_LENGTH = 4000  # internal notes, case resolutions and email replies


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
        available=agents.is_present(bool(agent.available), _utc_or_none(agent.present_until)),
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
        conversation_id=case_.conversation_id,
        customer_id=case_.customer_id,
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


def new_case_reference() -> str:
    """GC- and 8 random letters or digits: unguessable, short enough to read out."""
    return "GC-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
