"""Frozen views the desk's repository returns: plain data, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.desk import agents
from bot.wallet.models import HandoffStatus, utcnow


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
    conversation_id: str | None = None
    customer_id: int | None = None
    notes: tuple[CaseNoteView, ...] = field(default=())

    @property
    def contact_email(self) -> str | None:
        email = self.details.get("contact_email")
        return email if isinstance(email, str) else None

    def age(self, now: datetime | None = None) -> timedelta:
        return (self.closed_at or now or utcnow()) - self.created_at


@dataclass(frozen=True)
class CaseNoteView:
    """A note or an email reply on a case: ``kind`` is "note" or "email"."""

    kind: str
    author: str
    text: str
    created_at: datetime
