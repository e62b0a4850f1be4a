"""Shared form validation: specific hints, failure counting, giving up gracefully.

After a second failed answer for a slot the shopper is reminded they can stop or ask for a
person; after the third the form ends (``gave_up``) and the journey's action offers a human.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.context import DIGRESSION_INTENTS, latest_entity, latest_intent
from bot.wallet import codes

MAX_FAILURES_PER_SLOT = 3

PARSERS = {
    "serial_number": codes.parse_serial,
    "order_number": codes.parse_order_number,
    "claim_code": codes.parse_claim_code,
}


class CardFormValidation(FormValidationAction):
    """Base of our form validators (abstract, so the action server does not register it)."""

    @abstractmethod
    def name(self) -> str: ...

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if tracker.get_slot("gave_up"):
            return []  # ends the form; the journey's action offers a human
        return domain_slots

    # The card formats are read from the whole answer when the entity extractor found none,
    # so that a malformed value gets a hint instead of the same question again.
    def _free_text(self, slot: str, tracker: Tracker) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != slot or latest_entity(tracker, slot):
            return {}
        if latest_intent(tracker) in DIGRESSION_INTENTS:
            return {}
        text = (tracker.latest_message.get("text") or "").strip()
        if not text or text.startswith("/"):
            return {}
        # Never put a claim code where it does not belong (e.g. typed as the serial number).
        if slot != "claim_code" and latest_entity(tracker, "claim_code"):
            return {}
        return {slot: text}

    async def extract_serial_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._free_text("serial_number", tracker)

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._free_text("order_number", tracker)

    async def extract_claim_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._free_text("claim_code", tracker)

    def _parse(
        self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        try:
            return {slot: PARSERS[slot](str(value))}
        except codes.CodeFormatError as error:
            return self.reject(slot, error.hint, dispatcher, tracker)

    async def validate_serial_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._parse("serial_number", value, dispatcher, tracker)

    async def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._parse("order_number", value, dispatcher, tracker)

    async def validate_claim_code(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._parse("claim_code", value, dispatcher, tracker)

    def reject(
        self, slot: str, hint: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        """Refuse a value with a specific hint, counting failures for this slot."""
        counts = dict(tracker.get_slot("failed_slot_attempts") or {})
        counts[slot] = counts.get(slot, 0) + 1
        dispatcher.utter_message(text=hint)
        result: dict[str, Any] = {slot: None, "failed_slot_attempts": counts}
        if counts[slot] == MAX_FAILURES_PER_SLOT - 1:
            dispatcher.utter_message(
                text='You can also say "stop" to leave this, or "agent" to talk to a person.'
            )
        elif counts[slot] >= MAX_FAILURES_PER_SLOT:
            result["gave_up"] = True
        return result


JOURNEY_SLOTS = (
    "serial_number",
    "order_number",
    "claim_code",
    "purchaser_name",
    "recipient_name",
    "delivery_contact",
    "failed_slot_attempts",
    "gave_up",
)


def reset_journey() -> list[dict[str, Any]]:
    """Forget what a finished (or stopped) journey collected, so nothing secret lingers."""
    return [SlotSet(slot, None) for slot in JOURNEY_SLOTS]
