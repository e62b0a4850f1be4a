"""The ownership and rate-limit policy of PRODUCT.md's security section, in one place.

- A card's value or state is shown only to a shopper who proves more than the (public) serial:
  the signed-in purchaser or recipient of the card's order, or someone who gives its order
  number. What was proved is recorded in the wallet store (the console trusts only that).
- Not found, wrong order number and locked get the same answer, and so does every other
  failure an unverified shopper can cause: the answer depends only on the asker's own counts
  (this conversation, this signed-in customer), never on the card's.
- Failures are counted per conversation, per signed-in customer and per card. Past the first
  two limits the assistant stops looking up and offers a human. Past the card's, the card's
  order-number path closes for the window, silently (a stranger hears the usual words); its
  signed-in owner still gets in.
- What locks a card: wrong claim codes tried against it by signed-in shoppers (see
  claim_code.py), ``max_failures_per_card`` of them. A lock stops redemption, the thing those
  guesses attack; failed verifications by strangers never lock, or anyone could lock a card
  against its owner by typing its public serial.
- A sudden rise in failed lookups across all conversations logs an alarm line (enumeration).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.context import repository, signed_in_customer
from actions.handoff import offer_human
from bot.settings import get_settings
from bot.wallet import codes
from bot.wallet.repository import CardView, CustomerView, VerificationMethod

logger = logging.getLogger(__name__)

ALARM_WINDOW = timedelta(minutes=1)
_last_alarm = 0.0


def is_owner(customer: CustomerView | None, card: CardView) -> bool:
    """The signed-in shopper is the purchaser or the recipient on the card's order."""
    if customer is None:
        return False
    return customer.id == card.purchaser_id or (
        card.recipient_email is not None and customer.email == card.recipient_email.lower()
    )


def is_throttled(tracker: Tracker, customer: CustomerView | None) -> bool:
    """This conversation or this signed-in customer is past its limit. Only the asker's own
    counts: the answer must be the same whichever card (or no card) was asked about."""
    settings = get_settings()
    counts = repository().failure_counts(
        conversation_id=tracker.sender_id,
        customer_id=customer.id if customer else None,
        card_id=None,
        window=timedelta(hours=settings.failure_window_hours),
    )
    return (
        counts.conversation >= settings.max_failures_per_conversation
        or counts.customer >= settings.max_failures_per_customer
    )


def closed_to_strangers(tracker: Tracker, card: CardView) -> bool:
    """Too many failed verifications of this card lately: its order-number path stays shut
    for the window (the stranger hears the usual "couldn't verify"); its owner still gets in."""
    settings = get_settings()
    counts = repository().failure_counts(
        conversation_id=tracker.sender_id,
        customer_id=None,
        card_id=card.id,
        window=timedelta(hours=settings.failure_window_hours),
    )
    return counts.card >= settings.max_failures_per_card


def record_failure(
    tracker: Tracker,
    kind: str,
    customer: CustomerView | None,
    card: CardView | None,
    *,
    may_lock: bool = False,
) -> None:
    """Count a failed lookup. ``may_lock``: a wrong claim code, which counts toward the card's
    lock; failed verifications never do."""
    settings = get_settings()
    repository().record_failed_attempt(
        kind=kind,
        conversation_id=tracker.sender_id,
        customer_id=customer.id if customer else None,
        card_id=card.id if card else None,
        lock_card_after=settings.max_failures_per_card if may_lock else None,
    )
    _raise_alarm_on_a_surge()


def _raise_alarm_on_a_surge() -> None:
    """One log line a minute at most while failed lookups run above the alarm rate: cards
    are being enumerated. It names counts only, never a card, code or conversation."""
    global _last_alarm
    threshold = get_settings().enumeration_alarm_per_minute
    if time.monotonic() - _last_alarm < ALARM_WINDOW.total_seconds():
        return
    failures = repository().failed_lookups_since(ALARM_WINDOW)
    if failures >= threshold:
        _last_alarm = time.monotonic()
        logger.warning(
            "ALARM failed card lookups: %d in the last minute (threshold %d); "
            "possible enumeration in progress",
            failures,
            threshold,
        )


def record_proof(
    tracker: Tracker, card: CardView, method: VerificationMethod, customer: CustomerView | None
) -> None:
    """Write down what this conversation proved: the record the agent console trusts."""
    repository().record_verification(
        tracker.sender_id, card.id, method, customer.id if customer else None
    )


def named_card(tracker: Tracker) -> CardView | None:
    """The card whose serial the conversation holds; None when none is held or the value is
    not a serial at all (a typed command can put anything in a slot)."""
    serial = tracker.get_slot("serial_number")
    if not serial:
        return None
    try:
        return repository().find_card_by_serial(serial)
    except codes.CodeFormatError:
        return None


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
    (the shopper stopped), or when this conversation or customer is over its limit.
    """
    if tracker.get_slot("gave_up"):
        return None, offer_human(dispatcher, "form_failed")
    if not tracker.get_slot("serial_number"):
        return None, []
    customer = signed_in_customer(tracker)
    if is_throttled(tracker, customer):
        dispatcher.utter_message(response="utter_throttled")
        return None, offer_human(dispatcher, "too_many_failures")
    return CardCheck(customer, named_card(tracker)), []
