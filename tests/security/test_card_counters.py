"""Finding 5 (the per-card lock is visible and anyone can trigger it): an unverified shopper
hears the same words whatever the card's state or counters, and strangers' failed
verifications never lock a card against its owner. What does lock a card: wrong claim codes
tried against it by signed-in shoppers (actions/verification.py)."""

from __future__ import annotations

import pytest

from actions.balance import ActionCheckBalance
from actions.claim_code import ActionDiagnoseClaimCode
from bot.settings import get_settings
from bot.wallet.repository import WalletRepository
from tests.actions.conftest import Conversation, new_card, new_customer

pytestmark = pytest.mark.anyio

UNKNOWN_SERIAL = "1711111111111111111"
WRONG_ORDER = "111-1111111-1111111"


async def test_strangers_hear_the_same_words_whatever_the_cards_counters(
    domain: dict, wallet: WalletRepository
) -> None:
    purchaser_email, purchaser_token = new_customer(wallet)
    card = new_card(wallet, purchaser_email)
    limit = get_settings().max_failures_per_card

    for attempt in range(limit + 3):  # each from a new conversation, as the probe did
        real = await Conversation(domain).run(
            ActionCheckBalance(), slots={"serial_number": card.serial, "order_number": WRONG_ORDER}
        )
        fake = await Conversation(domain).run(
            ActionCheckBalance(),
            slots={"serial_number": UNKNOWN_SERIAL, "order_number": WRONG_ORDER},
        )
        assert real.messages == fake.messages == [{**fake.messages[0]}], attempt
        assert real.responses == ["utter_card_not_verified"]

    # The card's order-number path is closed for now, silently: the right number gets the
    # same words from a stranger...
    right = await Conversation(domain).run(
        ActionCheckBalance(),
        slots={"serial_number": card.serial, "order_number": card.order_number},
    )
    assert right.messages == fake.messages
    # ...but the card is not locked, and its signed-in purchaser still gets its value.
    found = wallet.find_card_by_serial(card.serial)
    assert found is not None and not found.locked
    owner = Conversation(domain, token=purchaser_token)
    turn = await owner.run(ActionCheckBalance(), slots={"serial_number": card.serial})
    assert turn.responses == ["utter_card_value_active"]


async def test_wrong_claim_codes_from_signed_in_shoppers_lock_the_card(
    domain: dict, wallet: WalletRepository
) -> None:
    purchaser_email, purchaser_token = new_customer(wallet)
    card = new_card(wallet, purchaser_email)
    for _ in range(get_settings().max_failures_per_card):
        _, guesser_token = new_customer(wallet, "Guesser")
        guess = await Conversation(domain, token=guesser_token).run(
            ActionDiagnoseClaimCode(),
            slots={"serial_number": card.serial, "claim_code": "ZZZZ9999ZZZZ99"},
        )
        assert guess.responses == ["utter_claim_code_unusable"]
    found = wallet.find_card_by_serial(card.serial)
    assert found is not None and found.locked

    # Its owner still sees the value, and why it cannot be redeemed right now.
    owner = Conversation(domain, token=purchaser_token)
    turn = await owner.run(ActionCheckBalance(), slots={"serial_number": card.serial})
    assert turn.responses == [
        "utter_card_value_active",
        "utter_card_locked_owner",
        "utter_offer_human",
    ]
