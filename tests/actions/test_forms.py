"""Form validators run whole, as the action server runs them: hints, early values, giving up."""

from __future__ import annotations

from actions.balance import ValidateBalanceForm
from actions.claim_code import ValidateClaimCodeForm
from actions.damaged_card import ValidateDamagedCardForm
from actions.forms import MAX_FAILURES_PER_SLOT
from bot.wallet.demo import CARDS

ACTIVE = CARDS[0]


async def test_a_malformed_serial_gets_a_specific_hint(conversation):
    turn = await conversation.run(
        ValidateBalanceForm(),
        text="1712 3456 7890",
        requested_slot="serial_number",
        active_loop="balance_form",
    )
    assert turn.slot("serial_number") is None
    assert "19 digits; I counted 12" in turn.texts[0]
    assert turn.slot("failed_slot_attempts") == {"serial_number": 1}


async def test_a_serial_given_early_is_normalised_and_the_order_number_asked(conversation):
    turn = await conversation.run(
        ValidateBalanceForm(),
        new_slots={"serial_number": "1712-3456-7890-1234-567"},
        text="how much is on 1712-3456-7890-1234-567",
        intent="check_balance",
        entities=[{"entity": "serial_number", "value": "1712-3456-7890-1234-567"}],
        active_loop="balance_form",
    )
    assert turn.slot("serial_number") == "1712345678901234567"
    assert turn.slot("requested_slot") == "order_number"
    assert turn.messages == []


async def test_a_claim_code_typed_as_the_serial_is_never_stored_there(conversation):
    turn = await conversation.run(
        ValidateBalanceForm(),
        text=f"it is {ACTIVE.claim_code}",
        entities=[{"entity": "claim_code", "value": ACTIVE.claim_code}],
        requested_slot="serial_number",
        active_loop="balance_form",
    )
    assert not turn.sets("serial_number")


async def test_digressions_are_not_taken_as_answers(conversation):
    turn = await conversation.run(
        ValidateClaimCodeForm(),
        text="why do you need it",
        intent="why_needed",
        requested_slot="claim_code",
        active_loop="claim_code_form",
    )
    assert turn.events == []


async def test_after_repeated_failures_the_form_gives_up(conversation):
    failures = {"claim_code": MAX_FAILURES_PER_SLOT - 1}
    turn = await conversation.run(
        ValidateClaimCodeForm(),
        slots={"failed_slot_attempts": failures},
        text="ABC",
        requested_slot="claim_code",
        active_loop="claim_code_form",
    )
    assert turn.slot("gave_up") is True
    assert turn.slot("requested_slot") is None  # the form ends; its action offers a person
    assert "14 or 15 letters and digits" in turn.texts[0]


async def test_names_are_taken_as_typed(conversation):
    turn = await conversation.run(
        ValidateDamagedCardForm(),
        slots={"serial_number": ACTIVE.serial, "order_number": ACTIVE.order_number},
        new_slots={"purchaser_name": "  Ann   Lee "},
        text="  Ann   Lee ",
        requested_slot="purchaser_name",
        active_loop="damaged_card_form",
    )
    assert turn.slot("purchaser_name") == "Ann Lee"
