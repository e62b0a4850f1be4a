"""The wallet store's only queries, named after what the caller wants.

Each method runs in its own short transaction (``with Session(engine) as s, s.begin():``) and
returns plain frozen views, never ORM objects, so callers cannot touch the database by accident.
"""

from __future__ import annotations

from bot.wallet.repository.agent_accounts import AgentsRepository
from bot.wallet.repository.base import ConflictError, WalletError
from bot.wallet.repository.cards import CardsRepository
from bot.wallet.repository.conversations import ConversationsRepository
from bot.wallet.repository.handoffs import HandoffsRepository
from bot.wallet.repository.views import (
    AgentView,
    CardView,
    CaseView,
    ClaimCodeStatus,
    CustomerView,
    FailureCounts,
    HandoffView,
    IssuedCard,
    LedgerLine,
    NoteView,
    OutboxView,
    RedeemResult,
    Replacement,
    VerificationMethod,
    VerificationView,
)


class WalletRepository(
    CardsRepository, ConversationsRepository, HandoffsRepository, AgentsRepository
):
    """The whole store, one short transaction per call (see the modules for each part)."""

    @classmethod
    def from_settings(cls) -> WalletRepository:
        from bot.settings import get_settings
        from bot.wallet.db import make_engine

        settings = get_settings()
        return cls(make_engine(settings.db_url), settings.claim_code_secret, settings.sealing_key)


__all__ = [
    "AgentView",
    "CardView",
    "CaseView",
    "ClaimCodeStatus",
    "ConflictError",
    "CustomerView",
    "FailureCounts",
    "HandoffView",
    "IssuedCard",
    "LedgerLine",
    "NoteView",
    "OutboxView",
    "RedeemResult",
    "Replacement",
    "VerificationMethod",
    "VerificationView",
    "WalletError",
    "WalletRepository",
]
