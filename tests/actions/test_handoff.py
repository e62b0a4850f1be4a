"""Handing over: the queue when an agent is free, a case and an email when none is."""

from __future__ import annotations

from actions.handoff import ActionHandoff, ActionSaveContact
from tests.actions.conftest import new_customer
from tests.conftest import agents_available


async def test_with_an_agent_free_the_shopper_joins_the_queue(conversation, wallet):
    with agents_available(wallet, True):
        turn = await conversation.run(ActionHandoff(), slots={"handoff_reason": "form_failed"})
    assert turn.responses == ["utter_handoff_requested"]
    assert turn.messages[0]["position"] >= 1
    request = wallet.open_handoff(conversation.sender_id)
    assert request is not None and request["reason"] == "form_failed"
    assert turn.slot("handoff_offered") is False


async def test_with_no_agent_a_signed_in_shopper_gets_an_email_case(conversation, wallet):
    email, conversation.token = new_customer(wallet, "Eve Email")
    with agents_available(wallet, False):
        turn = await conversation.run(ActionHandoff())
    assert turn.responses == ["utter_no_agent_email_account"]
    assert turn.messages[0]["email"] == email[0] + "••@example.com"
    assert wallet.open_handoff(conversation.sender_id) is None  # nobody is left waiting
    case = wallet.case_details(turn.slot("case_reference"))
    assert case["details"]["contact_email"] == email


async def test_with_no_agent_a_signed_out_shopper_is_asked_for_an_email(conversation, wallet):
    with agents_available(wallet, False):
        turn = await conversation.run(ActionHandoff())
    assert turn.responses == ["utter_no_agent_ask_email"]
    assert turn.slot("contact_requested") is True
    reference = turn.slot("case_reference")

    turn = await conversation.run(
        ActionSaveContact(),
        slots={"case_reference": reference, "contact_requested": True},
        text="it's kim@example.com",
        entities=[{"entity": "email", "value": "kim@example.com"}],
    )
    assert turn.responses == ["utter_contact_saved"]
    assert turn.slot("contact_requested") is False
    assert wallet.case_details(reference)["details"]["contact_email"] == "kim@example.com"
