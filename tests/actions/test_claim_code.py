"""A claim code that doesn't work, and redeeming: diagnosis, atomic credit, no echo."""

from __future__ import annotations

from actions.claim_code import ActionDiagnoseClaimCode, ActionRedeemCard, ValidateRedeemForm
from bot.wallet import codes
from bot.wallet.demo import CARDS
from bot.wallet.models import CardState
from tests.actions.conftest import new_card, new_customer
from tests.conftest import token_for

ACTIVE, _SHIPPED, REDEEMED, INACTIVE, CANCELLED, LOCKED = CARDS


def _never_echoes(turn, claim_code: str) -> None:
    canonical = codes.parse_claim_code(claim_code)
    said = repr(turn.messages).upper().replace("-", "").replace(" ", "")
    assert canonical not in said


async def test_signed_out_shoppers_get_advice_not_a_lookup(conversation):
    turn = await conversation.run(
        ActionDiagnoseClaimCode(), slots={"claim_code": ACTIVE.claim_code}
    )
    assert turn.responses == ["utter_claim_code_signed_out"]
    assert turn.slot("claim_code") is None and turn.sets("claim_code")


async def test_each_diagnosis(conversation, wallet):
    conversation.token = token_for(wallet, "ann@example.com")
    expected = {
        REDEEMED.claim_code: ["utter_claim_code_redeemed_elsewhere", "utter_offer_human"],
        INACTIVE.claim_code: ["utter_claim_code_not_activated", "utter_offer_human"],
        CANCELLED.claim_code: ["utter_claim_code_cancelled", "utter_offer_human"],
    }
    for claim_code, responses in expected.items():
        turn = await conversation.run(ActionDiagnoseClaimCode(), slots={"claim_code": claim_code})
        assert turn.responses == responses
        _never_echoes(turn, claim_code)


async def test_redeemed_by_you_shows_the_balance(conversation, wallet):
    conversation.token = token_for(wallet, "ben@example.com")
    turn = await conversation.run(
        ActionDiagnoseClaimCode(), slots={"claim_code": REDEEMED.claim_code}
    )
    assert turn.responses == ["utter_claim_code_redeemed_by_you"]
    assert turn.messages[0]["balance"].startswith("$")


async def test_unknown_and_locked_codes_get_the_same_words(conversation, wallet):
    _, conversation.token = new_customer(wallet)
    unknown = await conversation.run(
        ActionDiagnoseClaimCode(), slots={"claim_code": "ZZZZ-ZZZZZZ-9999"}
    )
    locked = await conversation.run(
        ActionDiagnoseClaimCode(), slots={"claim_code": LOCKED.claim_code}
    )
    assert unknown.messages == locked.messages == [unknown.messages[0]]
    assert unknown.responses == ["utter_claim_code_unusable"]


async def test_lookalike_characters_get_a_typo_hint(conversation, wallet):
    _, conversation.token = new_customer(wallet)
    turn = await conversation.run(
        ActionDiagnoseClaimCode(), slots={"claim_code": "AQ4T-B7XWZC-9M20"}
    )
    assert turn.responses == ["utter_claim_code_unusable", "utter_claim_code_lookalikes"]


async def test_a_valid_code_is_offered_for_redemption_then_redeemed(conversation, wallet):
    email, conversation.token = new_customer(wallet)
    card = new_card(wallet, email, amount_minor=12_34)
    turn = await conversation.run(ActionDiagnoseClaimCode(), slots={"claim_code": card.claim_code})
    assert turn.responses == ["utter_claim_code_redeemable", "utter_offer_redeem"]
    assert turn.slot("redeem_offered") is True
    assert not turn.sets("claim_code")  # kept for the "yes"

    turn = await conversation.run(ActionRedeemCard(), slots={"claim_code": card.claim_code})
    assert turn.responses == ["utter_redeemed"]
    assert turn.messages[0]["amount"] == "$12.34"
    assert turn.messages[0]["balance"] == "$12.34"
    assert turn.slot("claim_code") is None
    found = wallet.find_card_by_serial(card.serial)
    assert found.state == CardState.REDEEMED

    again = await conversation.run(ActionRedeemCard(), slots={"claim_code": card.claim_code})
    assert again.responses == ["utter_claim_code_redeemed_by_you"]
    customer = wallet.find_customer_by_email(email)
    assert wallet.account_balance(customer.id) == 12_34


async def test_redeeming_needs_a_signed_in_shopper(conversation):
    required = await ValidateRedeemForm().required_slots(
        ["claim_code"], None, conversation.tracker(), {}
    )
    assert required == []
    turn = await conversation.run(ActionRedeemCard(), slots={"claim_code": ACTIVE.claim_code})
    assert turn.responses == ["utter_sign_in_to_redeem"]
    assert wallet_state(ACTIVE.serial) == CardState.ACTIVE


def wallet_state(serial: str) -> CardState:
    from actions.context import repository

    return repository().find_card_by_serial(serial).state


async def test_failed_codes_count_against_the_card_named_earlier(conversation, wallet):
    email, conversation.token = new_customer(wallet)
    card = new_card(wallet, email)
    turn = await conversation.run(
        ActionDiagnoseClaimCode(),
        slots={"claim_code": "ZZZZ-ZZZZZZ-9999", "serial_number": card.serial},
    )
    assert turn.responses == ["utter_claim_code_unusable"]
    assert wallet.find_card_by_serial(card.serial).failed_attempts == 1
