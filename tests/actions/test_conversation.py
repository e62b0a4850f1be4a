"""Conversation plumbing: the fallback's readable buttons, "why?", stopping, declining."""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import (
    ActionDeclineOffer,
    ActionDefaultAskAffirmation,
    ActionExplainRequestedSlot,
    ActionStopJourney,
)


async def test_fallback_buttons_use_the_shoppers_words(conversation, domain):
    tracker = conversation.tracker(intent="nlu_fallback")
    tracker.latest_message["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.45},
        {"name": "faq", "confidence": 0.3},
        {"name": "check_balance", "confidence": 0.2},
        {"name": "redeem_card", "confidence": 0.1},
    ]
    tracker.latest_message["response_selector"] = {
        "faq": {"response": {"intent_response_key": "faq/expiry"}}
    }
    dispatcher = CollectingDispatcher()
    await ActionDefaultAskAffirmation().run(dispatcher, tracker, domain)
    buttons = dispatcher.messages[0]["buttons"]
    assert buttons == [
        {"title": "Do gift cards expire?", "payload": "/faq/expiry"},
        {"title": "Check a card's value", "payload": "/check_balance"},
        {"title": "Something else", "payload": "/out_of_scope"},
    ]


async def test_why_explains_the_slot_being_asked(conversation):
    turn = await conversation.run(ActionExplainRequestedSlot(), requested_slot="order_number")
    assert turn.responses == ["utter_why_order_number"]
    turn = await conversation.run(ActionExplainRequestedSlot())
    assert turn.responses == ["utter_why_generic"]


async def test_stop_forgets_the_journey(conversation):
    turn = await conversation.run(
        ActionStopJourney(), slots={"serial_number": "1712345678901234567", "gave_up": True}
    )
    assert turn.responses == ["utter_ok_stopped"]
    assert turn.sets("serial_number") and turn.slot("serial_number") is None


async def test_declining_clears_the_offer_and_any_code(conversation):
    turn = await conversation.run(
        ActionDeclineOffer(), slots={"redeem_offered": True, "claim_code": "AQ4TB7XWZC9M2P"}
    )
    assert turn.slot("redeem_offered") is False
    assert turn.sets("claim_code") and turn.slot("claim_code") is None
