"""Handing over: the queue when an agent is free, a case and an email when none is."""

from __future__ import annotations

from rasa_sdk.events import ActionExecuted, SessionStarted

from actions.handoff import ActionHandoff, ActionSaveContact, ActionSessionStart
from bot.wallet import codes
from bot.wallet.repository import VerificationMethod
from tests.actions.conftest import new_card, new_customer
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


def _slot(name: str, value: object) -> dict[str, object]:
    return {"event": "slot", "name": name, "value": value}


async def test_the_agent_sees_the_card_after_a_failed_lookup_reset_the_journey(
    conversation, wallet
):
    """The lookup failed, its journey reset the serial, the shopper asked for a person: the
    queue entry still names the card (masked), with the shopper's last words and journey."""
    email, _ = new_customer(wallet)
    card = new_card(wallet, email)
    history = [
        {"event": "session_started"},
        {"event": "user", "text": "balance?", "parse_data": {"intent": {"name": "check_balance"}}},
        _slot("serial_number", card.serial),
        _slot("serial_number", None),  # reset_journey() after the failed lookup
    ]
    text = f"a person please, card {card.serial} code {card.claim_code}"
    with agents_available(wallet, True):
        await conversation.run(
            ActionHandoff(),
            slots={"handoff_reason": "too_many_failures"},
            history=history,
            text=text,
            intent="human_handoff",
        )
    request = wallet.open_handoff(conversation.sender_id)
    masked = codes.mask_serial(card.serial)
    assert request["context"] == {
        "serial": masked,
        "verification": None,
        "case_reference": None,
        "last_intent": "human_handoff",
        "journey": "check balance",
        "last_message": f"a person please, card {masked} code {codes.MASKED_CLAIM_CODE}",
    }


async def test_what_was_verified_comes_from_the_store_not_a_slot(conversation, wallet):
    """Typed verification: the context names the recorded proof (its summary), and a slot
    claiming a verification changes nothing."""
    email, _ = new_customer(wallet)
    card = new_card(wallet, email)
    found = wallet.find_card_by_serial(card.serial)
    wallet.record_verification(
        conversation.sender_id, found.id, VerificationMethod.ORDER_NUMBER, None
    )
    forged = {"verification": {"card_id": found.id, "by": "order details"}}
    with agents_available(wallet, True):
        await conversation.run(ActionHandoff(), slots=forged)
    request = wallet.open_handoff(conversation.sender_id)
    assert request["context"]["verification"] == (
        f"card {found.masked_serial} verified by order number"
    )
    assert wallet.handoff_verified_card(request["id"]) is None  # no replacement offered


async def test_a_returning_shopper_hears_where_their_case_stands(conversation, wallet):
    start = ActionSessionStart()
    turn = await conversation.run(start)
    assert (turn.responses, turn.events) == (
        [],
        [SessionStarted(), ActionExecuted("action_listen")],
    )

    reference = wallet.open_case(
        kind="handoff_shopper_asked", conversation_id=conversation.sender_id, details={}
    )
    turn = await conversation.run(start)
    assert turn.responses == ["utter_case_open"]
    assert turn.messages[0]["reference"] == reference
    assert turn.events == [SessionStarted(), ActionExecuted("action_listen")]

    wallet.create_agent(f"a-{conversation.sender_id[-8:]}", "a long password 42")
    wallet.close_case(reference, f"a-{conversation.sender_id[-8:]}", "sent a new card")
    turn = await conversation.run(start)
    assert turn.responses == ["utter_case_closed"]
    assert turn.messages[0]["reference"] == reference
