"""Recovering a card with a damaged claim code: five details, a new code by email only."""

from __future__ import annotations

from datetime import timedelta

from rasa_sdk.executor import CollectingDispatcher

from actions.damaged_card import ActionReplaceDamagedCard, ValidateDamagedCardForm
from tests.actions.conftest import new_card, new_customer


def _details(card, purchaser_name, **overrides):
    details = {
        "serial_number": card.serial,
        "order_number": card.order_number,
        "purchaser_name": purchaser_name,
        "recipient_name": "Zoë Ångström",
        "delivery_contact": "zoe@example.com",
    }
    details.update(overrides)
    return details


DAY = timedelta(days=1)


async def test_full_match_replaces_the_code_and_emails_it(conversation, wallet):
    email, _ = new_customer(wallet, name="Renée Dubois")
    card = new_card(wallet, email)
    # Names compared case- and accent-insensitively, tolerant of extra spaces.
    slots = _details(
        card, "  renee   DUBOIS ", recipient_name="zoe angstrom", delivery_contact="ZOE@example.com"
    )
    outbox_before = len(wallet.outbox("zoe@example.com"))

    turn = await conversation.run(ActionReplaceDamagedCard(), slots=slots)

    assert turn.responses == ["utter_code_replaced"]
    assert turn.messages[0]["email"] == "z••@example.com"
    mails = wallet.outbox("zoe@example.com")
    assert len(mails) == outbox_before + 1 and mails[-1].has_claim_code
    # The old code is void; the emailed one is the card's code now.
    from actions.context import repository
    from bot.wallet.repository import ClaimCodeStatus

    assert repository().claim_code_status(card.claim_code, None) == ClaimCodeStatus.NOT_FOUND
    body = wallet.render_outbox_email(mails[-1].id)
    new_code = next(line.strip() for line in body.splitlines() if line.startswith("    "))
    assert repository().claim_code_status(new_code, None) == ClaimCodeStatus.REDEEMABLE
    assert new_code.replace("-", "") not in repr(turn.messages).replace("-", "")


async def test_shipping_address_matches_too(conversation, wallet):
    email, _ = new_customer(wallet, name="Omar Haddad")
    card = new_card(
        wallet, email, recipient_email=None, shipping_address="221B Baker Street, London NW1 6XE"
    )
    slots = _details(card, "Omar Haddad", delivery_contact="221b baker street london nw1 6xe")
    turn = await conversation.run(ActionReplaceDamagedCard(), slots=slots)
    assert turn.responses == ["utter_code_replaced"]


async def test_a_mismatch_opens_a_masked_case_and_offers_a_person(conversation, wallet):
    email, _ = new_customer(wallet, name="Mia Schulz")
    card = new_card(wallet, email)
    slots = _details(card, "Mia Schulz", recipient_name="Somebody Else")
    turn = await conversation.run(ActionReplaceDamagedCard(), slots=slots)

    assert turn.responses == ["utter_damaged_not_matched", "utter_offer_human"]
    reference = turn.slot("case_reference")
    case = wallet.case_details(reference)
    assert case["details"]["serial"] == "••••" + card.serial[-4:]
    assert card.serial not in repr(case)
    assert case["details"]["delivery"] == "z••@example.com"
    found = wallet.find_card_by_serial(card.serial)
    counts = wallet.failure_counts(
        conversation_id=conversation.sender_id, customer_id=None, card_id=found.id, window=DAY
    )
    assert (counts.conversation, counts.card) == (1, 1)
    assert found.failed_attempts == 0, "a failed verification never counts toward the lock"


async def test_unknown_serial_gets_the_same_answer_as_a_mismatch(domain, wallet):
    from tests.actions.conftest import Conversation

    email, _ = new_customer(wallet, name="Li Wei")
    card = new_card(wallet, email)
    mismatch = await Conversation(domain).run(
        ActionReplaceDamagedCard(), slots=_details(card, "Someone Else")
    )
    unknown = await Conversation(domain).run(
        ActionReplaceDamagedCard(),
        slots=_details(card, "Li Wei", serial_number="1711111111111111111"),
    )
    strip = lambda turn: [{k: v for k, v in m.items() if k != "reference"} for m in turn.messages]  # noqa: E731
    assert strip(mismatch) == strip(unknown)


async def test_form_rejects_blank_names_with_a_specific_hint(conversation):
    dispatcher = CollectingDispatcher()
    result = await ValidateDamagedCardForm().validate_purchaser_name(
        "  !! ", dispatcher, conversation.tracker(), {}
    )
    assert result["purchaser_name"] is None
    assert dispatcher.messages[0]["text"] == "Please type the purchaser's full name."
