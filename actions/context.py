"""What every action needs: the wallet repository and who the shopper is."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rasa_sdk import Tracker

from bot.settings import get_settings
from bot.tokens import verify_customer_token
from bot.wallet.repository import CustomerView, WalletRepository

# Intents whose message must never be read as a form answer (digressions and exits).
DIGRESSION_INTENTS = frozenset(
    {
        "stop",
        "why_needed",
        "faq",
        "human_handoff",
        "report_scam",
        "out_of_scope",
        "greet",
        "goodbye",
        "thank",
        "bot_challenge",
    }
)


@lru_cache(maxsize=1)
def repository() -> WalletRepository:
    """One repository (one engine and connection pool) per action server process."""
    return WalletRepository.from_settings()


def signed_in_customer(tracker: Tracker) -> CustomerView | None:
    """The customer whose store-signed token came with the latest message, if any.

    Only a valid ``customer_token`` counts; a customer id in plain metadata is ignored.
    """
    metadata: dict[str, Any] = tracker.latest_message.get("metadata") or {}
    customer_id = verify_customer_token(metadata.get("customer_token"), get_settings().token_secret)
    if customer_id is None:
        return None
    return repository().get_customer(customer_id)


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    for found in tracker.latest_message.get("entities") or []:
        if found.get("entity") == entity and found.get("value"):
            return str(found["value"])
    return None


def actor(tracker: Tracker) -> str:
    """How the audit log names the assistant acting in this conversation."""
    return f"bot:{tracker.sender_id}"[:100]
