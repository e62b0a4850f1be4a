"""The wallet store's only queries, named after what the caller wants.

Each method runs in its own short transaction (``with Session(engine) as s, s.begin():``) and
returns plain frozen views, never ORM objects, so callers cannot touch the database by accident.
"""

from __future__ import annotations

from bot.desk.repository import DeskRepository
from bot.desk.views import AgentView, CaseView, HandoffView, NoteView
from bot.wallet.repository.cards import CardsRepository
from bot.wallet.repository.conversations import ConversationsRepository
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
    VerificationMethod,
    VerificationView,
)
from bot.wallet.store import ConflictError, WalletError


class WalletRepository(CardsRepository, ConversationsRepository, DeskRepository):
    """The whole store in one object, one short transaction per call: the wallet's parts and
    the support desk's (``bot.desk.repository``), on one engine, for callers that use both
    (the action server, the CLI, the demo seed). The desk's views are re-exported here."""

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
