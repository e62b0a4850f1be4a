"""Handing a conversation to a person: offering, and recording the request for the console."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import repository, signed_in_customer
from actions.forms import reset_journey
from bot.wallet import codes


def offer_human(dispatcher: CollectingDispatcher, reason: str) -> list[dict[str, Any]]:
    """Ask whether the shopper wants a person; a following "yes" runs action_handoff."""
    dispatcher.utter_message(response="utter_offer_human")
    return [SlotSet("handoff_offered", True), SlotSet("handoff_reason", reason)]


def handoff_context(tracker: Tracker) -> dict[str, Any]:
    """What the agent should see: masked, never a claim code."""
    serial = tracker.get_slot("serial_number")
    return {
        "serial": codes.mask_serial(serial) if serial else None,
        "verification": tracker.get_slot("verification"),
        "case_reference": tracker.get_slot("case_reference"),
        "last_intent": (tracker.latest_message.get("intent") or {}).get("name"),
    }


class ActionOfferHuman(Action):
    def name(self) -> str:
        return "action_offer_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return offer_human(dispatcher, "scam_report" if intent == "report_scam" else "offered")


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        customer = signed_in_customer(tracker)
        reason = tracker.get_slot("handoff_reason") or "shopper_asked"
        repository().request_handoff(
            conversation_id=tracker.sender_id,
            reason=reason,
            channel=tracker.get_latest_input_channel() or "unknown",
            context=handoff_context(tracker),
            customer_id=customer.id if customer else None,
            case_reference=tracker.get_slot("case_reference"),
        )
        dispatcher.utter_message(response="utter_handoff_requested")
        return [
            *reset_journey(),  # the request holds the (masked) context now
            SlotSet("handoff_offered", False),
            SlotSet("handoff_requested", True),
            SlotSet("handoff_reason", None),
        ]
