"""Rejection and the two-stage fallback, driven by real text through the real servers.

No typed ``/nlu_fallback``: the messages below are ones the trained model is unsure about or
rightly rejects, so these tests fail if the model starts taking them for a gift-card task.
"""

from __future__ import annotations

import pytest

from tests.servers import Servers

pytestmark = pytest.mark.servers

# Too short to tell what the shopper wants: "add it" or "check it" score within the
# FallbackClassifier's ambiguity margin, and "card stuff" scores below its threshold.
UNSURE = "the card"
UNSURE_AGAIN = "card stuff"


def test_an_unsure_message_gets_did_you_mean_and_the_choice_is_followed(
    servers: Servers,
) -> None:
    chat = servers.chat()
    asked = chat.say(UNSURE)
    assert "Did you mean" in asked and "[Something else]" in asked
    assert "[Check a card's value]" in asked
    assert "serial number" in chat.say("/check_balance")


def test_unsure_twice_then_the_offer_of_a_person(servers: Servers) -> None:
    chat = servers.chat()
    assert "Did you mean" in chat.say(UNSURE)
    assert "say it another way" in chat.say("/out_of_scope")
    assert "Did you mean" in chat.say(UNSURE_AGAIN)
    final = chat.say("/out_of_scope")
    assert "talk to a person" in final and "[Yes, get me a person]" in final


@pytest.mark.parametrize(
    "message",
    [
        "book me a table for two at an italian place tonight",
        "how long should i roast a chicken",
        "set an alarm for 6 am",
        "what's the exchange rate from dollars to yen",
        "my package never arrived",
    ],
)
def test_what_is_not_about_gift_cards_is_declined(servers: Servers, message: str) -> None:
    chat = servers.chat()
    assert "only help with gift cards" in chat.say(message)
