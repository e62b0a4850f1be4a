"""The support desk's only queries: agents, the handoff queue and cases.

Like the wallet's repository, each method runs in its own short transaction and returns frozen
views (``bot.desk.views``), never ORM objects.
"""

from __future__ import annotations

from bot.desk.repository.agents import AgentsRepository
from bot.desk.repository.cases import CasesRepository
from bot.desk.repository.handoffs import HandoffsRepository
from bot.desk.views import AgentView, CaseNoteView, CaseView, HandoffView, NoteView
from bot.wallet.store import ConflictError, WalletError


class DeskRepository(HandoffsRepository, CasesRepository, AgentsRepository):
    """The support desk's part of the store, one short transaction per call."""

    @classmethod
    def from_settings(cls) -> DeskRepository:
        from bot.settings import get_settings
        from bot.wallet.db import make_engine

        settings = get_settings()
        return cls(make_engine(settings.db_url), settings.claim_code_secret, settings.sealing_key)


__all__ = [
    "AgentView",
    "CaseNoteView",
    "CaseView",
    "ConflictError",
    "DeskRepository",
    "HandoffView",
    "NoteView",
    "WalletError",
]
