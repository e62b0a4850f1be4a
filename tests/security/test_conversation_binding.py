"""Finding 4 (a conversation is not bound to a customer): a conversation belongs to the
customer who first signs in to it; another customer's token in it counts as no token, so a
redemption only ever goes to the customer who proved the card in that conversation."""

from __future__ import annotations

import pytest

from actions.claim_code import ActionRedeemCard
from actions.context import signed_in_customer
from bot.wallet.repository import ClaimCodeStatus, WalletRepository
from tests.actions.conftest import new_card, new_customer
from tests.servers import Servers


def test_the_first_customer_to_sign_in_owns_the_conversation(conversation, wallet):
    bob_email, bob_token = new_customer(wallet, "Bob Example")
    _, mallory_token = new_customer(wallet, "Mallory Example")
    conversation.token = bob_token
    bob = signed_in_customer(conversation.tracker())
    assert bob is not None and bob.email == bob_email

    conversation.token = mallory_token
    assert signed_in_customer(conversation.tracker()) is None  # not Mallory, and not Bob
    conversation.token = bob_token
    assert signed_in_customer(conversation.tracker()) == bob  # Bob is still Bob


@pytest.mark.anyio
async def test_another_customers_yes_does_not_redeem_the_offered_card(conversation, wallet):
    bob_email, bob_token = new_customer(wallet, "Bob Example")
    _, mallory_token = new_customer(wallet, "Mallory Example")
    card = new_card(wallet, bob_email)
    conversation.token = bob_token
    signed_in_customer(conversation.tracker())  # Bob's first signed-in turn

    conversation.token = mallory_token
    offered = {"claim_code": card.claim_code, "redeem_offered": True}
    turn = await conversation.run(ActionRedeemCard(), slots=offered)

    assert turn.responses == ["utter_sign_in_to_redeem"]
    mallory = wallet.find_customer_by_email(_email_of(wallet, mallory_token))
    assert wallet.account_balance(mallory.id) == 0
    bob = wallet.find_customer_by_email(bob_email)
    assert wallet.claim_code_status(card.claim_code, bob.id) == ClaimCodeStatus.REDEEMABLE


def _email_of(wallet: WalletRepository, token: str) -> str:
    from bot.settings import get_settings
    from bot.tokens import verify_customer_token

    customer = wallet.get_customer(verify_customer_token(token, get_settings().token_secret))
    assert customer is not None
    return customer.email


def test_over_rest_a_second_token_cannot_finish_the_first_shoppers_redemption(
    servers: Servers, wallet: WalletRepository
) -> None:
    bob_email, bob_token = new_customer(wallet, "Bob Example")
    mallory_email, mallory_token = new_customer(wallet, "Mallory Example")
    card = new_card(wallet, bob_email)
    bob = servers.chat(bob_token)
    bob.say("my claim code doesn't work")
    offer = bob.say(card.claim_code)
    assert "apply it to your gift card balance" in offer, bob.transcript

    mallory = servers.chat(mallory_token)
    mallory.sender = bob.sender  # Mallory knows (or guessed) Bob's conversation id
    answer = mallory.say("yes")

    assert "sign in" in answer, mallory.transcript
    mallory_id = wallet.find_customer_by_email(mallory_email).id
    assert wallet.account_balance(mallory_id) == 0
    bob_id = wallet.find_customer_by_email(bob_email).id
    assert wallet.claim_code_status(card.claim_code, bob_id) == ClaimCodeStatus.REDEEMABLE


def test_a_conversation_owned_by_nobody_is_claimed_by_its_first_signed_in_customer(
    wallet: WalletRepository,
) -> None:
    ann = wallet.find_customer_by_email("ann@example.com")
    ben = wallet.find_customer_by_email("ben@example.com")
    assert wallet.claim_conversation("fresh-conversation", ann.id) == ann.id
    assert wallet.claim_conversation("fresh-conversation", ben.id) == ann.id
    assert wallet.claim_conversation("fresh-conversation", ann.id) == ann.id
