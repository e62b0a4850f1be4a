"""The tracker store keeps no claim code and no customer token."""

from __future__ import annotations

from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered

from bot.settings import get_settings
from bot.tracker_store import REDACTED, redact
from bot.wallet import codes

CODE = "AQ4T-B7XWZC-9M2P"


def _user_event() -> UserUttered:
    return UserUttered(
        f"Ann: {CODE} is broken",
        intent={"name": "inform", "confidence": 0.9},
        entities=[
            {"entity": "claim_code", "value": CODE, "start": 5, "end": 21},
            {"entity": "person", "value": "Ann", "start": 0, "end": 3},
        ],
        parse_data={"intent_ranking": [{"name": "inform", "confidence": 0.9}]},
        metadata={"customer_token": "eyJ.secret", "locale": "en"},
    )


def test_user_text_entities_and_token_are_redacted_in_a_copy() -> None:
    event = _user_event()
    stored = redact(event)
    as_stored = repr(stored.as_dict())
    assert "B7XWZC" not in as_stored and "eyJ.secret" not in as_stored
    assert stored.text == f"Ann: {codes.MASKED_CLAIM_CODE} is broken"
    assert stored.entities[0]["value"] == codes.MASKED_CLAIM_CODE
    assert stored.entities[1]["value"] == "Ann"
    assert stored.as_dict()["metadata"] == {"customer_token": REDACTED, "locale": "en"}
    assert stored.as_dict()["parse_data"]["intent_ranking"]  # the rest is kept
    # The turn in progress still sees what the shopper typed.
    assert CODE in event.text and event.metadata["customer_token"] == "eyJ.secret"


def test_the_claim_code_slot_is_sealed_and_opens_again() -> None:
    key = get_settings().sealing_key
    stored = redact(SlotSet("claim_code", "AQ4TB7XWZC9M2P"))
    assert isinstance(stored, SlotSet) and stored.value.startswith(codes.SEALED_PREFIX)
    assert "AQ4TB7XWZC9M2P" not in stored.value
    assert codes.unseal_claim_code(stored.value, key) == "AQ4TB7XWZC9M2P"
    assert codes.unseal_claim_code(redact(stored).value, key) == "AQ4TB7XWZC9M2P"  # idempotent


def test_other_events_are_kept_as_they_are() -> None:
    event = SlotSet("serial_number", "1712345678901234567")
    assert redact(event) is event
    action = ActionExecuted("action_listen")
    assert redact(action) is action
    session = redact(SlotSet("session_started_metadata", {"customer_token": "t", "x": 1}))
    assert session.value == {"customer_token": REDACTED, "x": 1}
