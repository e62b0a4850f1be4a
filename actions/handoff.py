"""Handing a conversation to a person: offering, queueing for the console, or email instead.

When an agent is available the conversation joins the queue and the shopper hears their place
in it. When none is, the assistant does not leave them waiting: it opens a case and promises
an email, to the account's address when signed in, otherwise to one the shopper gives.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import latest_entity, repository, signed_in_customer
from actions.forms import reset_journey
from bot.wallet import codes
from bot.wallet.repository import CustomerView


def offer_human(dispatcher: CollectingDispatcher, reason: str) -> list[dict[str, Any]]:
    """Ask whether the shopper wants a person; a following "yes" runs action_handoff."""
    dispatcher.utter_message(response="utter_offer_human")
    return [SlotSet("handoff_offered", True), SlotSet("handoff_reason", reason)]


# Intents that carry no journey of their own: the journey is the topic before them.
NOT_A_JOURNEY = frozenset(
    {
        "human_handoff",
        "affirm",
        "deny",
        "inform",
        "greet",
        "goodbye",
        "thank",
        "stop",
        "bot_challenge",
        "nlu_fallback",
        "out_of_scope",
    }
)


def handoff_context(tracker: Tracker) -> dict[str, Any]:
    """What the agent should see: masked, never a claim code. What was verified comes from
    the wallet store's record (written when the action verified), never from a slot."""
    serial = latest_serial(tracker)
    proof = repository().latest_verification(tracker.sender_id)
    text = tracker.latest_message.get("text")
    return {
        "serial": codes.mask_serial(serial) if serial else None,
        "verification": proof.summary if proof else None,
        "case_reference": tracker.get_slot("case_reference"),
        "last_intent": (tracker.latest_message.get("intent") or {}).get("name"),
        "journey": _journey(tracker),
        # The shopper's words for triage, masked as everywhere (the console masks again).
        "last_message": codes.mask_claim_codes(text, serials=True)[:500]
        if isinstance(text, str) and text
        else None,
    }


def latest_serial(tracker: Tracker) -> str | None:
    """The serial this session last named, even when a failed lookup's journey reset has
    cleared the slot since: the slot's own history in the tracker, newest first. Only shown
    masked, never trusted (what was verified comes from the store)."""
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") == "slot" and event.get("name") == "serial_number":
            found = _serial(event.get("value"))
            if found:
                return found
    return _serial(tracker.get_slot("serial_number"))


def _serial(value: Any) -> str | None:
    """A well-formed serial, or None (a typed command can put anything in a slot)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return codes.parse_serial(value)
    except codes.CodeFormatError:
        return None


def _journey(tracker: Tracker) -> str | None:
    """The topic the shopper came with: the newest intent that is a journey of its own."""
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") == "user":
            name = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if name and name not in NOT_A_JOURNEY:
                return str(name).replace("_", " ")
    return None


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
        events = [
            *reset_journey(),  # the request or case holds the (masked) context now
            SlotSet("handoff_offered", False),
            SlotSet("handoff_reason", None),
        ]
        if not repository().available_agents():
            return events + _case_instead(dispatcher, tracker, reason, customer)
        repository().request_handoff(
            conversation_id=tracker.sender_id,
            reason=reason,
            channel=tracker.get_latest_input_channel() or "unknown",
            context=handoff_context(tracker),
            customer_id=customer.id if customer else None,
            case_reference=tracker.get_slot("case_reference"),
        )
        position = repository().queue_position(tracker.sender_id) or 1
        dispatcher.utter_message(response="utter_handoff_requested", position=position)
        return events


def _case_instead(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: str,
    customer: CustomerView | None,
) -> list[dict[str, Any]]:
    """No agent is available: a case answered by email, not a wait."""
    reference = tracker.get_slot("case_reference") or repository().open_case(
        kind=f"handoff_{reason}",
        conversation_id=tracker.sender_id,
        details=handoff_context(tracker),
        customer_id=customer.id if customer else None,
    )
    if customer is not None:
        repository().add_case_contact(reference, customer.email)
        dispatcher.utter_message(
            response="utter_no_agent_email_account",
            reference=reference,
            email=codes.mask_email(customer.email),
        )
        return [SlotSet("case_reference", reference), SlotSet("contact_requested", False)]
    dispatcher.utter_message(response="utter_no_agent_ask_email", reference=reference)
    return [SlotSet("case_reference", reference), SlotSet("contact_requested", True)]


class ActionSaveContact(Action):
    """The email address a signed-out shopper gave for their case."""

    def name(self) -> str:
        return "action_save_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        email = latest_entity(tracker, "email")
        reference = tracker.get_slot("case_reference")
        if email and reference:
            repository().add_case_contact(reference, email)
            dispatcher.utter_message(response="utter_contact_saved", email=codes.mask_email(email))
        else:
            dispatcher.utter_message(response="utter_contact_missing", reference=reference)
        return [SlotSet("contact_requested", False)]


class ActionSessionStart(Action):
    """Rasa's session start, and a returning shopper with a case hears where it stands."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        # What Rasa 3.6.21's own ActionSessionStart.run returns (rasa/core/actions/action.py)
        # with carry_over_slots_to_new_session false, as in domain.yml; plus the case's state.
        events: list[dict[str, Any]] = [SessionStarted()]
        case = repository().latest_case_of(tracker.sender_id)
        if case is not None and case.status == "open":
            dispatcher.utter_message(response="utter_case_open", reference=case.reference)
        elif case is not None:
            dispatcher.utter_message(response="utter_case_closed", reference=case.reference)
        return [*events, ActionExecuted("action_listen")]
