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

from actions.context import DIGRESSION_INTENTS, latest_entity
from bot.wallet import codes

MAX_FAILURES_PER_SLOT = 3
# Below this confidence a message that looks like a digression is taken as the answer.
DIGRESSION_CONFIDENCE = 0.8

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

    def _answer(self, slot: str, tracker: Tracker, entity: str | None = None) -> dict[str, Any]:
        """The shopper's answer to the question for ``slot``, unless it is a digression.

        A card format is read from the whole message when the entity extractor found none, so
        a malformed value gets a hint instead of the same question again. A free-text answer
        (a name, an address) is taken as typed unless the message is confidently a question,
        a "stop" or the like: names are easily mistaken for anything.
        """
        if tracker.get_slot("requested_slot") != slot:
            return {}
        found = latest_entity(tracker, entity or slot)
        if found:
            # A card format found by the rules is already in its slot (Rasa's mapping).
            return {slot: found} if entity else {}
        intent = tracker.latest_message.get("intent") or {}
        if (
            intent.get("name") in DIGRESSION_INTENTS
            and float(intent.get("confidence") or 0) >= DIGRESSION_CONFIDENCE
        ):
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
        return self._answer("serial_number", tracker)

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._answer("order_number", tracker)

    async def extract_claim_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._answer("claim_code", tracker)

    def _parse(
        self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        try:
            # Not str(value): a typed command can send an object, which is no serial either.
            return {slot: PARSERS[slot](value)}
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
