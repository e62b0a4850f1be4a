"""A claim code that doesn't work (``claim_code_not_working``) and redeeming (``redeem_card``).

The claim code is the secret that spends a card: it is never echoed, logged, or kept in a slot
after the journey. Only signed-in shoppers get a diagnosis that depends on the card (redeemed
here or elsewhere, not activated, cancelled); everyone else gets the general advice, so a
signed-out visitor cannot test codes. "Not found" and "locked" share one answer.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import actor, repository, signed_in_customer, slot_text
from actions.forms import CardFormValidation, reset_journey
from actions.handoff import offer_human
from actions.verification import is_throttled, named_card, record_failure
from bot.wallet import codes
from bot.wallet.money import format_money
from bot.wallet.repository import ClaimCodeStatus, CustomerView


class ValidateClaimCodeForm(CardFormValidation):
    def name(self) -> str:
        return "validate_claim_code_form"


class ValidateRedeemForm(CardFormValidation):
    def name(self) -> str:
        return "validate_redeem_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if signed_in_customer(tracker) is None:
            return []  # action_redeem_card asks the shopper to sign in
        return await super().required_slots(domain_slots, dispatcher, tracker, domain)


def _claim_code(tracker: Tracker) -> str | None:
    """The claim code slot, opened if the tracker store sealed it (bot/tracker_store.py)."""
    return slot_text(tracker, "claim_code")


def _explain(
    status: ClaimCodeStatus,
    claim_code: str,
    customer: CustomerView,
    dispatcher: CollectingDispatcher,
) -> list[dict[str, Any]]:
    """Tell a signed-in shopper what is wrong with a code they hold, and what to do."""
    if status == ClaimCodeStatus.REDEEMABLE:
        dispatcher.utter_message(response="utter_claim_code_redeemable")
        dispatcher.utter_message(response="utter_offer_redeem")
        return [SlotSet("redeem_offered", True)]
    if status == ClaimCodeStatus.REDEEMED_BY_YOU:
        balance = format_money(repository().account_balance(customer.id))
        dispatcher.utter_message(response="utter_claim_code_redeemed_by_you", balance=balance)
        return []
    if status == ClaimCodeStatus.REDEEMED_ELSEWHERE:
        dispatcher.utter_message(response="utter_claim_code_redeemed_elsewhere")
        return offer_human(dispatcher, "redeemed_elsewhere")
    if status == ClaimCodeStatus.NOT_ACTIVATED:
        dispatcher.utter_message(response="utter_claim_code_not_activated")
        return offer_human(dispatcher, "not_activated")
    if status == ClaimCodeStatus.CANCELLED:
        dispatcher.utter_message(response="utter_claim_code_cancelled")
        return offer_human(dispatcher, "cancelled")
    # NOT_FOUND and LOCKED: the same words.
    dispatcher.utter_message(response="utter_claim_code_unusable")
    if codes.has_ambiguous_characters(claim_code):
        dispatcher.utter_message(response="utter_claim_code_lookalikes")
    return []


class ActionDiagnoseClaimCode(Action):
    def name(self) -> str:
        return "action_diagnose_claim_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        claim_code = _claim_code(tracker)
        # The code leaves the slots now; a "yes, apply it" keeps it until action_redeem_card.
        events: list[dict[str, Any]] = [e for e in reset_journey() if e["name"] != "claim_code"]
        if tracker.get_slot("gave_up"):
            return [*events, SlotSet("claim_code", None), *offer_human(dispatcher, "form_failed")]
        if not claim_code:
            return events
        customer = signed_in_customer(tracker)
        if customer is None:
            dispatcher.utter_message(response="utter_claim_code_signed_out")
            return [*events, SlotSet("claim_code", None)]
        outcome = _checked_status(tracker, customer, claim_code, dispatcher)
        if outcome is None:
            return [
                *events,
                SlotSet("claim_code", None),
                *offer_human(dispatcher, "too_many_failures"),
            ]
        more = _explain(outcome, claim_code, customer, dispatcher)
        keep_code = outcome == ClaimCodeStatus.REDEEMABLE
        return [*events, *([] if keep_code else [SlotSet("claim_code", None)]), *more]


def _checked_status(
    tracker: Tracker, customer: CustomerView, claim_code: str, dispatcher: CollectingDispatcher
) -> ClaimCodeStatus | None:
    """The code's status, counting a failure when it matches no usable card; None if throttled."""
    if is_throttled(tracker, customer):
        dispatcher.utter_message(response="utter_throttled")
        return None
    status = repository().claim_code_status(claim_code, customer.id)
    if status in (ClaimCodeStatus.NOT_FOUND, ClaimCodeStatus.LOCKED):
        # A wrong code tried against the card named earlier in the chat counts toward that
        # card's lock: guessing a known card's code is the attack a lock stops.
        record_failure(tracker, "claim_code", customer, named_card(tracker), may_lock=True)
    return status


class ActionRedeemCard(Action):
    def name(self) -> str:
        return "action_redeem_card"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        events = [*reset_journey(), SlotSet("redeem_offered", False)]
        customer = signed_in_customer(tracker)
        if customer is None:
            dispatcher.utter_message(response="utter_sign_in_to_redeem")
            return events
        if tracker.get_slot("gave_up"):
            return events + offer_human(dispatcher, "form_failed")
        claim_code = _claim_code(tracker)
        if not claim_code:
            return events
        status = _checked_status(tracker, customer, claim_code, dispatcher)
        if status is None:
            return events + offer_human(dispatcher, "too_many_failures")
        if status != ClaimCodeStatus.REDEEMABLE:
            return events + _explain(status, claim_code, customer, dispatcher)
        result = repository().redeem(claim_code, customer.id, actor=actor(tracker))
        if not result.redeemed or result.card is None or result.balance_minor is None:
            # Lost a race with another redemption of the same card.
            return events + _explain(result.status, claim_code, customer, dispatcher)
        dispatcher.utter_message(
            response="utter_redeemed",
            amount=format_money(result.card.amount_minor, result.card.currency),
            balance=format_money(result.balance_minor),
        )
        return events
