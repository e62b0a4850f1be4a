"""The ownership and rate-limit policy of PRODUCT.md's security section, in one place.

- A card's value or state is shown only to a shopper who proves more than the (public) serial:
  the signed-in purchaser or recipient of the card's order, or someone who gives its order
  number.
- Not found, wrong order number and locked get the same answer.
- Failures are counted per conversation, per signed-in customer and per card; past a small
  number the assistant stops looking up and offers a human, and the card is locked.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.context import repository, signed_in_customer
from actions.handoff import offer_human
from bot.settings import get_settings
from bot.wallet.repository import CardView, CustomerView


def is_owner(customer: CustomerView | None, card: CardView) -> bool:
    """The signed-in shopper is the purchaser or the recipient on the card's order."""
    if customer is None:
        return False
    return customer.id == card.purchaser_id or (
        card.recipient_email is not None and customer.email == card.recipient_email.lower()
    )


def is_throttled(
    tracker: Tracker, customer: CustomerView | None, card_id: int | None = None
) -> bool:
    settings = get_settings()
    counts = repository().failure_counts(
        conversation_id=tracker.sender_id,
        customer_id=customer.id if customer else None,
        card_id=card_id,
        window=timedelta(hours=settings.failure_window_hours),
    )
    return (
        counts.conversation >= settings.max_failures_per_conversation
        or counts.customer >= settings.max_failures_per_customer
        or counts.card >= settings.max_failures_per_card
    )


def record_failure(
    tracker: Tracker, kind: str, customer: CustomerView | None, card: CardView | None
) -> None:
    repository().record_failed_attempt(
        kind=kind,
        conversation_id=tracker.sender_id,
        customer_id=customer.id if customer else None,
        card_id=card.id if card else None,
        lock_card_after=get_settings().max_failures_per_card,
    )


def normalise_name(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a person's name or an address."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^\w\s@]", " ", without_accents.casefold()).split()
    return " ".join(words)


def delivery_matches(given: str, card: CardView) -> bool:
    """The email the card was sent to, or the shipping address it was sent to."""
    wanted = [card.recipient_email, card.shipping_address]
    return any(w is not None and normalise_name(given) == normalise_name(w) for w in wanted)


@dataclass(frozen=True)
class CardCheck:
    """Who is asking about which card, once the journey may look it up."""

    customer: CustomerView | None
    card: CardView | None


def start_card_check(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> tuple[CardCheck | None, list[dict[str, Any]]]:
    """The card named by the form's serial, or the events that end the journey here.

    The journey ends when the form gave up (a person is offered), when there is no serial
    (the shopper stopped), or when this conversation, customer or card is over its limit.
    """
    if tracker.get_slot("gave_up"):
        return None, offer_human(dispatcher, "form_failed")
    serial = tracker.get_slot("serial_number")
    if not serial:
        return None, []
    customer = signed_in_customer(tracker)
    card = repository().find_card_by_serial(serial)
    if is_throttled(tracker, customer, card.id if card else None):
        dispatcher.utter_message(response="utter_throttled")
        return None, offer_human(dispatcher, "too_many_failures")
    return CardCheck(customer, card), []
