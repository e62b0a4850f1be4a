"""Recover a card whose claim code is damaged (intent ``damaged_card``).

All five details must match the order: serial, order number, purchaser's name, recipient's name,
and the email or shipping address it was delivered to. On a full match the damaged code is
voided and a new one is emailed to the order's address (never shown in the chat). Otherwise a
support case records what was collected (masked) and a person is offered. Not found, mismatch
and locked get the same answer.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import actor, repository, slot_text
from actions.forms import CardFormValidation, reset_journey
from actions.handoff import offer_human
from actions.verification import (
    closed_to_strangers,
    delivery_matches,
    normalise_name,
    record_failure,
    record_proof,
    start_card_check,
)
from bot.wallet import codes
from bot.wallet.models import CardState
from bot.wallet.repository import CardView, VerificationMethod

MAX_NAME_LENGTH = 200


class ValidateDamagedCardForm(CardFormValidation):
    def name(self) -> str:
        return "validate_damaged_card_form"

    def _text(
        self, slot: str, value: Any, what: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        text = " ".join(str(value or "").split())
        if not normalise_name(text) or len(text) > MAX_NAME_LENGTH:
            return self.reject(slot, f"Please type the {what}.", dispatcher, tracker)
        return {slot: text}

    async def extract_purchaser_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._answer("purchaser_name", tracker, entity="person")

    async def extract_recipient_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._answer("recipient_name", tracker, entity="person")

    async def extract_delivery_contact(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._answer("delivery_contact", tracker, entity="email")

    async def validate_purchaser_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text("purchaser_name", value, "purchaser's full name", dispatcher, tracker)

    async def validate_recipient_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text("recipient_name", value, "recipient's full name", dispatcher, tracker)

    async def validate_delivery_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._text(
            "delivery_contact",
            value,
            "email address the card was sent to, or the shipping address",
            dispatcher,
            tracker,
        )


def _all_details_match(tracker: Tracker, card: CardView) -> bool:
    return (
        not card.locked
        and not closed_to_strangers(tracker, card)
        and tracker.get_slot("order_number") == card.order_number
        and normalise_name(slot_text(tracker, "purchaser_name") or "")
        == normalise_name(card.purchaser_name)
        and normalise_name(slot_text(tracker, "recipient_name") or "")
        == normalise_name(card.recipient_name)
        and delivery_matches(slot_text(tracker, "delivery_contact") or "", card)
    )


def _masked_details(tracker: Tracker) -> dict[str, Any]:
    serial = tracker.get_slot("serial_number")
    contact = slot_text(tracker, "delivery_contact") or ""
    return {
        "serial": codes.mask_serial(serial) if serial else None,
        "order_number": tracker.get_slot("order_number"),
        "purchaser_name": codes.mask_claim_codes(slot_text(tracker, "purchaser_name") or ""),
        "recipient_name": codes.mask_claim_codes(slot_text(tracker, "recipient_name") or ""),
        "delivery": codes.mask_email(contact) if "@" in contact else "shipping address given",
    }


class ActionReplaceDamagedCard(Action):
    def name(self) -> str:
        return "action_replace_damaged_card"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = reset_journey()
        check, stop = start_card_check(dispatcher, tracker)
        if check is None:
            return events + stop
        customer, card = check.customer, check.card

        if card is not None and _all_details_match(tracker, card):
            if card.state in (CardState.ACTIVE, CardState.INACTIVE):
                replacement = repository().replace_claim_code(
                    card.id, actor=actor(tracker), conversation_id=tracker.sender_id
                )
                dispatcher.utter_message(
                    response="utter_code_replaced", email=codes.mask_email(replacement.sent_to)
                )
                record_proof(tracker, card, VerificationMethod.ORDER_DETAILS, customer)
                return events
            # Verified, but there is no code to replace: say why and let a person help.
            reference = repository().open_case(
                kind=f"damaged_card_{card.state.value}",
                conversation_id=tracker.sender_id,
                details=_masked_details(tracker),
                customer_id=customer.id if customer else None,
                card_id=card.id,
            )
            response = (
                "utter_damaged_card_redeemed"
                if card.state == CardState.REDEEMED
                else "utter_damaged_card_cancelled"
            )
            dispatcher.utter_message(response=response, reference=reference)
            return [
                *events,
                SlotSet("case_reference", reference),
                *offer_human(dispatcher, "damaged_card"),
            ]

        record_failure(tracker, "damaged_card_verification", customer, card)
        reference = repository().open_case(
            kind="damaged_card_unverified",
            conversation_id=tracker.sender_id,
            details=_masked_details(tracker),
            customer_id=customer.id if customer else None,
            card_id=card.id if card else None,
        )
        dispatcher.utter_message(response="utter_damaged_not_matched", reference=reference)
        return [
            *events,
            SlotSet("case_reference", reference),
            *offer_human(dispatcher, "damaged_card_unverified"),
        ]
