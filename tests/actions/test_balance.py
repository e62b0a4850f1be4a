"""Checking a card's value: only for its owner, one answer for every failure, rate limits."""

from __future__ import annotations

from actions.balance import ActionCheckBalance, ValidateBalanceForm
from bot.settings import get_settings
from bot.wallet.demo import CARDS
from bot.wallet.repository import VerificationMethod
from tests.actions.conftest import Conversation, new_card, new_customer
from tests.conftest import token_for

ACTIVE, _SHIPPED, REDEEMED, INACTIVE, CANCELLED, LOCKED = CARDS


async def test_signed_in_purchaser_sees_the_value_without_an_order_number(conversation, wallet):
    conversation.token = token_for(wallet, "ann@example.com")
    required = await ValidateBalanceForm().required_slots(
        ["serial_number"], None, conversation.tracker({"serial_number": ACTIVE.serial}), {}
    )
    assert required == ["serial_number"]

    turn = await conversation.run(ActionCheckBalance(), slots={"serial_number": ACTIVE.serial})

    assert turn.responses == ["utter_card_value_active"]
    assert turn.messages[0]["amount"] == "$50.00"
    assert turn.messages[0]["last4"] == ACTIVE.serial[-4:]
    proof = wallet.latest_verification(conversation.sender_id)
    assert proof is not None
    assert (proof.card.serial, proof.method) == (ACTIVE.serial, VerificationMethod.SIGNED_IN_OWNER)


async def test_signed_in_recipient_counts_as_owner(conversation, wallet):
    conversation.token = token_for(wallet, "ben@example.com")
    turn = await conversation.run(ActionCheckBalance(), slots={"serial_number": ACTIVE.serial})
    assert turn.responses == ["utter_card_value_active"]


async def test_anyone_else_is_asked_for_the_order_number(conversation, wallet):
    conversation.token = token_for(wallet, "chloe@example.com")  # neither purchaser nor recipient
    for serial in (ACTIVE.serial, "1799999999999999999"):  # existing and unknown: same question
        required = await ValidateBalanceForm().required_slots(
            ["serial_number"], None, conversation.tracker({"serial_number": serial}), {}
        )
        assert required == ["serial_number", "order_number"]


async def test_the_order_number_proves_ownership(conversation):
    turn = await conversation.run(
        ActionCheckBalance(),
        slots={"serial_number": INACTIVE.serial, "order_number": INACTIVE.order_number},
    )
    assert turn.responses == ["utter_card_value_inactive"]
    assert turn.messages[0]["amount"] == "$20.00"


async def test_each_state_is_reported(conversation):
    expected = {
        REDEEMED: "utter_card_value_redeemed",
        CANCELLED: "utter_card_value_cancelled",
    }
    for card, response in expected.items():
        slots = {"serial_number": card.serial, "order_number": card.order_number}
        turn = await conversation.run(ActionCheckBalance(), slots=slots)
        assert turn.responses == [response]


async def test_unknown_wrong_order_and_locked_get_identical_answers(domain, wallet):
    attempts = {
        "unknown serial": {
            "serial_number": "1711111111111111111",
            "order_number": "111-1111111-1111111",
        },
        "wrong order": {"serial_number": ACTIVE.serial, "order_number": "111-1111111-1111111"},
        "locked, right order": {
            "serial_number": LOCKED.serial,
            "order_number": LOCKED.order_number,
        },
    }
    answers = {}
    for label, slots in attempts.items():
        conversation = Conversation(domain)
        turn = await conversation.run(ActionCheckBalance(), slots=slots)
        answers[label] = turn.messages
        assert wallet.latest_verification(conversation.sender_id) is None
        assert not any("amount" in m for m in turn.messages)
    assert len({repr(a) for a in answers.values()}) == 1, answers


async def test_repeated_failures_stop_lookups_and_offer_a_person(conversation, wallet):
    email, _ = new_customer(wallet)
    card = new_card(wallet, email)
    wrong = {"serial_number": card.serial, "order_number": "111-1111111-1111111"}
    limit = get_settings().max_failures_per_conversation
    for _ in range(limit - 1):
        turn = await conversation.run(ActionCheckBalance(), slots=wrong)
        assert turn.responses == ["utter_card_not_verified"]
    turn = await conversation.run(ActionCheckBalance(), slots=wrong)
    assert turn.responses == ["utter_card_not_verified", "utter_offer_human"]
    assert turn.slot("handoff_offered") is True

    # Now even the right order number is not looked up in this conversation.
    right = {"serial_number": card.serial, "order_number": card.order_number}
    turn = await conversation.run(ActionCheckBalance(), slots=right)
    assert turn.responses == ["utter_throttled", "utter_offer_human"]


async def test_a_forged_token_is_not_signed_in(conversation, wallet):
    from bot.tokens import mint_customer_token

    ann = wallet.find_customer_by_email("ann@example.com")
    conversation.token = mint_customer_token(ann.id, "not-the-store-secret")
    turn = await conversation.run(ActionCheckBalance(), slots={"serial_number": ACTIVE.serial})
    assert turn.responses == ["utter_card_not_verified"]
