"""What every action needs: the wallet repository and who the shopper is."""

from __future__ import annotations

from functools import lru_cache

from rasa_sdk import Tracker

from bot.settings import get_settings
from bot.tokens import verify_customer_token
from bot.wallet import codes
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

    Only a valid ``customer_token`` counts; a customer id in plain metadata is ignored. A
    conversation belongs to the customer who first signed in to it: another customer's token
    in it counts as no token at all (whoever knows a conversation's id must not be able to
    finish it as themselves, e.g. answer "yes" to "apply it to your balance?").
    """
    metadata = tracker.latest_message.get("metadata") or {}
    token = metadata.get("customer_token") if isinstance(metadata, dict) else None
    customer_id = verify_customer_token(token, get_settings().token_secret)
    customer = repository().get_customer(customer_id) if customer_id is not None else None
    if customer is None:
        return None
    if repository().claim_conversation(tracker.sender_id, customer.id) != customer.id:
        return None
    return customer


def slot_text(tracker: Tracker, slot: str) -> str | None:
    """A text slot's value, opened if the tracker store sealed it at rest (the claim code and
    the free-text answers: see bot/tracker_store.py)."""
    value = tracker.get_slot(slot)
    if not isinstance(value, str) or not value:
        return None
    return codes.unseal_claim_code(value, get_settings().sealing_key)


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    for found in tracker.latest_message.get("entities") or []:
        if found.get("entity") == entity and found.get("value"):
            return str(found["value"])
    return None


def actor(tracker: Tracker) -> str:
    """How the audit log names the assistant acting in this conversation."""
    return f"bot:{tracker.sender_id}"[:100]
