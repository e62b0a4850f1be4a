"""Check a card's value without redeeming it (intent ``check_balance``)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import signed_in_customer
from actions.forms import CardFormValidation, reset_journey
from actions.handoff import offer_human
from actions.verification import (
    closed_to_strangers,
    is_owner,
    is_throttled,
    named_card,
    record_failure,
    record_proof,
    start_card_check,
)
from bot.wallet.models import CardState
from bot.wallet.money import format_money
from bot.wallet.repository import CardView, CustomerView, VerificationMethod


class ValidateBalanceForm(CardFormValidation):
    def name(self) -> str:
        return "validate_balance_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        slots = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        if not slots or not tracker.get_slot("serial_number"):
            return slots
        # The order number is needed unless the signed-in shopper is the card's owner. An
        # unknown serial is asked for it too: the answer must not tell whether the card exists.
        card = named_card(tracker)
        if card is not None and is_owner(signed_in_customer(tracker), card):
            return slots
        return [*slots, "order_number"]


class ActionCheckBalance(Action):
    def name(self) -> str:
        return "action_check_balance"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = reset_journey()
        check, stop = start_card_check(dispatcher, tracker)
        if check is None:
            return events + stop
        customer, card = check.customer, check.card
        method = _proof(tracker, customer, card)
        if card is None or method is None:
            record_failure(tracker, "balance_verification", customer, card)
            dispatcher.utter_message(response="utter_card_not_verified")
            if is_throttled(tracker, customer):
                return events + offer_human(dispatcher, "too_many_failures")
            return events

        record_proof(tracker, card, method, customer)
        _report_value(dispatcher, card, customer.id if customer else None)
        if card.locked:  # only its owner gets here: say why it cannot be redeemed now
            dispatcher.utter_message(response="utter_card_locked_owner")
            return events + offer_human(dispatcher, "card_locked")
        return events


def _proof(
    tracker: Tracker, customer: CustomerView | None, card: CardView | None
) -> VerificationMethod | None:
    """How this shopper proves the card theirs, if they do. The signed-in owner always does
    (a lock or strangers' failures never shut them out); the order number only while the
    card is neither locked nor closed to strangers, and without saying which."""
    if card is None:
        return None
    if is_owner(customer, card):
        return VerificationMethod.SIGNED_IN_OWNER
    order_number = tracker.get_slot("order_number")
    if (
        isinstance(order_number, str)
        and order_number == card.order_number
        and not card.locked
        and not closed_to_strangers(tracker, card)
    ):
        return VerificationMethod.ORDER_NUMBER
    return None


def _report_value(
    dispatcher: CollectingDispatcher, card: CardView, customer_id: int | None
) -> None:
    values = {
        "last4": card.serial[-4:],
        "amount": format_money(card.amount_minor, card.currency),
    }
    if card.state == CardState.ACTIVE:
        dispatcher.utter_message(response="utter_card_value_active", **values)
    elif card.state == CardState.REDEEMED:
        where = "to your account" if card.redeemed_by_id == customer_id else "to an account"
        date = f"{card.redeemed_at:%B %-d, %Y}" if card.redeemed_at else "an earlier date"
        dispatcher.utter_message(
            response="utter_card_value_redeemed", date=date, where=where, **values
        )
    elif card.state == CardState.INACTIVE:
        dispatcher.utter_message(response="utter_card_value_inactive", **values)
    else:
        dispatcher.utter_message(response="utter_card_value_cancelled", **values)
