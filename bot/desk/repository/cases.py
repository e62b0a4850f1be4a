"""Support cases: opened by the assistant when no agent is free (or a journey needs a person),
worked by agents in the console (notes, email replies through the outbox) and closed with a
resolution; the assistant tells a returning shopper where their case stands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from bot.desk import emails
from bot.desk.repository.rows import (
    MAX_NOTE_LENGTH,
    _actor,
    _case_view,
    _enabled_agent,
    _masked,
    new_case_reference,
)
from bot.desk.views import CaseNoteView, CaseView
from bot.wallet.models import (
    CaseEntry,
    Customer,
    HandoffRequest,
    OutboxEmail,
    SupportCase,
    utcnow,
)
from bot.wallet.store import ConflictError, RepositoryBase, WalletError, _audit, _utc


class CasesRepository(RepositoryBase):
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
        reference = new_case_reference()
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

    def follow_up_case(self, request_id: int, agent_username: str, follow_up: str) -> str:
        """A chat that ended unresolved becomes a case (its context and what is left to do),
        answered by email: at the account's address when the shopper was signed in, else at
        the address the conversation's earlier case had. Returns its reference."""
        follow_up = _masked(follow_up.strip())
        if not follow_up or len(follow_up) > MAX_NOTE_LENGTH:
            raise WalletError(f"what is left to do takes 1 to {MAX_NOTE_LENGTH} characters")
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            request = s.get(HandoffRequest, request_id)
            if request is None:
                raise WalletError(f"no handoff request with id {request_id}")
            earlier = s.get(SupportCase, request.case_id) if request.case_id else None
            if earlier is not None and earlier.status == "open":
                case_ = earlier
                case_.details = {**case_.details, "follow_up": follow_up}
            else:
                contact = earlier.details.get("contact_email") if earlier is not None else None
                if request.customer_id is not None:
                    contact = s.get(Customer, request.customer_id).email
                case_ = SupportCase(
                    reference=new_case_reference(),
                    kind="chat_unresolved",
                    conversation_id=request.conversation_id,
                    customer_id=request.customer_id,
                    details={
                        **dict(request.context),
                        "follow_up": follow_up,
                        **({"contact_email": contact} if contact else {}),
                    },
                )
                s.add(case_)
                s.flush()
                request.case_id = case_.id
                _audit(s, _actor(agent), "case.opened", case_.reference, {"kind": case_.kind})
            return str(case_.reference)

    def open_cases(self) -> list[CaseView]:
        """The cases agents still owe an answer, oldest first."""
        with self._transaction() as s:
            rows = s.execute(
                select(SupportCase)
                .where(SupportCase.status == "open")
                .order_by(SupportCase.created_at, SupportCase.id)
            ).scalars()
            return [_case_view(case_) for case_ in rows]

    def get_case(self, reference: str) -> CaseView | None:
        """A case with its history (notes and email replies, oldest first)."""
        with self._transaction() as s:
            case_ = s.execute(
                select(SupportCase).where(SupportCase.reference == reference.strip().upper())
            ).scalar_one_or_none()
            if case_ is None:
                return None
            entries = s.execute(
                select(CaseEntry)
                .where(CaseEntry.case_id == case_.id)
                .order_by(CaseEntry.created_at, CaseEntry.id)
            ).scalars()
            view = _case_view(case_)
            history = tuple(
                CaseNoteView(e.kind, e.author, e.text, _utc(e.created_at)) for e in entries
            )
            return CaseView(**{**view.__dict__, "notes": history})

    def latest_case_of(self, conversation_id: str) -> CaseView | None:
        """The newest case opened in a conversation: what a returning shopper asks about."""
        with self._transaction() as s:
            case_ = s.execute(
                select(SupportCase)
                .where(SupportCase.conversation_id == conversation_id)
                .order_by(SupportCase.created_at.desc(), SupportCase.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return _case_view(case_) if case_ is not None else None

    def add_case_note(self, reference: str, agent_username: str, text: str) -> CaseNoteView:
        """A note on a case for agents only. Claim codes and full serials in it are masked."""
        return self._add_entry(reference, agent_username, text, email=False)

    def reply_to_case(self, reference: str, agent_username: str, text: str) -> CaseNoteView:
        """Answer the shopper by email (the outbox), at the case's contact address."""
        return self._add_entry(reference, agent_username, text, email=True)

    def _add_entry(
        self, reference: str, agent_username: str, text: str, *, email: bool
    ) -> CaseNoteView:
        what = "a reply" if email else "a note"
        text = _masked(text.strip())
        if not text:
            raise WalletError(f"{what} must not be empty")
        if len(text) > MAX_NOTE_LENGTH:
            raise WalletError(f"{what} has at most {MAX_NOTE_LENGTH} characters")
        with self._transaction() as s:
            agent = _enabled_agent(s, agent_username)
            case_ = s.execute(
                select(SupportCase).where(SupportCase.reference == reference.strip().upper())
            ).scalar_one_or_none()
            if case_ is None:
                raise WalletError(f"no case with the reference {reference.strip()}")
            if case_.status != "open":
                raise ConflictError(f"the case {case_.reference} is already {case_.status}")
            outbox_id = None
            if email:
                to = _case_view(case_).contact_email
                if to is None:
                    raise ConflictError(
                        f"the case {case_.reference} has no contact email address to answer"
                    )
                message = emails.case_reply(case_.reference, agent.display_name, text)
                row = OutboxEmail(to_address=to, subject=message.subject, body=message.body)
                s.add(row)
                s.flush()
                outbox_id = row.id
            entry = CaseEntry(
                case_id=case_.id,
                kind="email" if email else "note",
                author=_actor(agent),
                text=text,
                outbox_id=outbox_id,
            )
            s.add(entry)
            s.flush()
            _audit(
                s,
                _actor(agent),
                "case.email_sent" if email else "case.note_added",
                case_.reference,
                {"entry_id": entry.id, "outbox_id": outbox_id},
            )
            return CaseNoteView(entry.kind, entry.author, entry.text, _utc(entry.created_at))
