"""The signed-in shopper's gift card balance (intent ``account_balance``)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import repository, signed_in_customer
from bot.wallet.money import format_money


class ActionAccountBalance(Action):
    def name(self) -> str:
        return "action_account_balance"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        customer = signed_in_customer(tracker)
        if customer is None:
            dispatcher.utter_message(response="utter_sign_in_for_account_balance")
            return []
        balance = repository().account_balance(customer.id)
        dispatcher.utter_message(response="utter_account_balance", balance=format_money(balance))
        return []
