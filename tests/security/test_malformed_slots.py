"""Finding 8 (slot values of the wrong type crashed two actions): a typed
``/check_balance{"serial_number": {"$gt": ""}}`` is refused like any malformed value."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.balance import ActionCheckBalance, ValidateBalanceForm
from actions.claim_code import ActionDiagnoseClaimCode
from bot.wallet.repository import WalletRepository
from tests.actions.conftest import Conversation, new_customer
from tests.servers import Servers

NOT_TEXT = [{"$gt": ""}, ["1712345678901234567"], 1712345678901234567, True]


@pytest.mark.anyio
async def test_actions_refuse_values_that_are_not_text(
    domain: dict, wallet: WalletRepository
) -> None:
    for value in NOT_TEXT:
        conversation = Conversation(domain, token=new_customer(wallet)[1])
        tracker = conversation.tracker({"serial_number": value})
        required = await ValidateBalanceForm().required_slots(
            ["serial_number"], CollectingDispatcher(), tracker, domain
        )
        assert required == ["serial_number", "order_number"], value

        dispatcher = CollectingDispatcher()
        refused = await ValidateBalanceForm().validate_serial_number(
            value, dispatcher, tracker, domain
        )
        assert refused["serial_number"] is None
        assert dispatcher.messages[0]["text"].startswith("Please type the serial number")

        turn = await conversation.run(ActionCheckBalance(), slots={"serial_number": value})
        assert turn.responses == ["utter_card_not_verified"], value
        turn = await Conversation(domain, token=new_customer(wallet)[1]).run(
            ActionDiagnoseClaimCode(),
            slots={"serial_number": value, "claim_code": "ZZZZ9999ZZZZ99"},
        )
        assert turn.responses == ["utter_claim_code_unusable"], value


def test_a_typed_command_with_an_object_gets_a_hint_not_a_crash(servers: Servers) -> None:
    chat = servers.chat()
    answer = chat.say('/check_balance{"serial_number": {"$gt": ""}}')
    assert "serial number" in answer.lower(), chat.transcript
    log = (servers.var_dir / "log" / "actions.log").read_text()
    assert "AttributeError" not in log and "An action failed" not in log
