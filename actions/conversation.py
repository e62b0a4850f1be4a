"""Conversation plumbing: "why do you need that?", stopping a journey, the fallback question."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import reset_journey

# What the "Did you mean …?" buttons say, in the shopper's words.
INTENT_TITLES = {
    "check_balance": "Check a card's value",
    "claim_code_not_working": "My claim code doesn't work",
    "damaged_card": "My claim code is damaged",
    "redeem_card": "Add a card to my balance",
    "account_balance": "See my gift card balance",
    "reload_balance": "Reload my balance",
    "report_scam": "Someone asked me to pay with gift cards",
    "human_handoff": "Talk to a person",
    "faq/serial_location": "Where is the serial number?",
    "faq/claim_code_location": "Where is the claim code?",
    "faq/expiry": "Do gift cards expire?",
    "faq/cash_out": "Can I get cash for a gift card?",
    "faq/checkout_use": "Using my balance at checkout",
    "faq/check_without_scratching": "Check a card without scratching it",
    "faq/app_balance": "My balance in the app",
}


class ActionExplainRequestedSlot(Action):
    def name(self) -> str:
        return "action_explain_requested_slot"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        slot = tracker.get_slot("requested_slot")
        response = f"utter_why_{slot}"
        dispatcher.utter_message(
            response=response if response in domain.get("responses", {}) else "utter_why_generic"
        )
        return []


class ActionStopJourney(Action):
    def name(self) -> str:
        return "action_stop_journey"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_ok_stopped")
        return [
            *reset_journey(),
            SlotSet("handoff_offered", False),
            SlotSet("redeem_offered", False),
        ]


class ActionDefaultAskAffirmation(Action):
    """First stage of the two-stage fallback, with readable button titles."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        buttons = []
        for intent in _candidates(tracker):
            title = INTENT_TITLES.get(intent)
            if title:
                buttons.append({"title": title, "payload": f"/{intent}"})
            if len(buttons) == 2:
                break
        # Rasa's two-stage fallback reads out_of_scope (not deny) as "none of these".
        buttons.append({"title": "Something else", "payload": "/out_of_scope"})
        dispatcher.utter_message(
            text="Sorry, I'm not sure I understood. Did you mean:", buttons=buttons
        )
        return []


def _candidates(tracker: Tracker) -> list[str]:
    """Intents from the ranking, with the FAQ resolved to its sub-intent."""
    message = tracker.latest_message
    faq = (message.get("response_selector") or {}).get("faq", {})
    faq_key = (faq.get("response") or {}).get("intent_response_key")
    names = []
    for ranked in message.get("intent_ranking") or []:
        name = ranked.get("name")
        if name == "nlu_fallback":
            continue
        names.append(faq_key if name == "faq" and faq_key else name)
    return names


class ActionDeclineOffer(Action):
    """The shopper said no to an offer (a person, or redeeming now)."""

    def name(self) -> str:
        return "action_decline_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_no_problem")
        dispatcher.utter_message(response="utter_anything_else")
        return [
            SlotSet("handoff_offered", False),
            SlotSet("handoff_reason", None),
            SlotSet("redeem_offered", False),
            SlotSet("claim_code", None),
        ]
