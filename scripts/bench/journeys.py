"""The benchmark's conversation: 40 turns of a signed-out shopper that walk every journey
against the real wallet store (the demo cards of ``bot/wallet/demo.py``).

Turn 4 and turn 40 are the same message in the same state (no form active, the bot has just
greeted), so their costs compare a short conversation with a long one and nothing else.
Each turn carries a phrase its answer should contain: a turn whose answer lacks it is counted
in the report (the script no longer walks the journey it names), never timed differently.
The plain ``rasa init`` bot is sent the same 40 messages (the same input for its NLU; its
answers are not checked: it only has to answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.wallet.demo import CARDS

ACTIVE, SHIPPED, REDEEMED, _INACTIVE, CANCELLED, _LOCKED = CARDS


@dataclass(frozen=True)
class Turn:
    journey: str
    message: str
    expect: str
    """Lower-case text the bot's answer contains when the turn went as scripted."""


PROBE = "check the balance on my gift card"
"""Turns 4 and 40."""

SHOPPER: tuple[Turn, ...] = (
    Turn("chit-chat", "hi", "gift card assistant"),
    Turn("faq", "do gift cards expire?", "never expire"),
    Turn("chit-chat", "good morning", "gift card assistant"),
    Turn("balance", PROBE, "serial number"),
    Turn("balance", "1712 3456 7890", "19 digits"),
    Turn("balance", ACTIVE.serial, "order number"),
    Turn("balance", "why do you need my order number", "anyone can read a serial number"),
    Turn("balance", ACTIVE.order_number, "$50.00"),
    Turn("faq", "where do I find the serial number on my card", ""),
    Turn("faq", "how do I top up my gift card balance", "reload balance"),
    Turn("claim code", "my gift card code says invalid", "claim code"),
    Turn("claim code", REDEEMED.claim_code, "sign in"),
    Turn("out of scope", "what's the weather like in paris tomorrow", "only help with gift cards"),
    Turn("chit-chat", "are you a bot?", ""),
    Turn(
        "damaged card",
        "I scratched too hard and the claim code came off with the foil",
        "serial number",
    ),
    Turn("damaged card", SHIPPED.serial, "order number"),
    Turn("damaged card", "do gift cards expire?", "never expire"),
    Turn("damaged card", "why do you need that", ""),
    Turn("damaged card", "stop", "stopped"),
    Turn("chit-chat", "hello", "gift card assistant"),
    Turn("balance", f"how much is on gift card {SHIPPED.serial}", "order number"),
    Turn("balance", SHIPPED.order_number, "$25.00"),
    Turn("faq", "can I cash out my gift card", ""),
    Turn("claim code", "my claim code doesn't work", "claim code"),
    Turn("claim code", "ABC123", "claim code"),
    Turn("claim code", "stop", "stopped"),
    Turn("out of scope", "tell me a joke", ""),
    Turn("damaged card", "the claim code on my card is damaged", "serial number"),
    Turn("damaged card", ACTIVE.serial, "order number"),
    Turn("damaged card", "stop", "stopped"),
    Turn("out of scope", "what is the capital of france", "only help with gift cards"),
    Turn("faq", "can I use a gift card at checkout", ""),
    Turn("claim code", "my gift card code isn't working", "claim code"),
    Turn("claim code", CANCELLED.claim_code, "sign in"),
    Turn("chit-chat", "thank you", "welcome"),
    Turn("balance", "how much money is on my gift card? I don't want to redeem it yet", "serial"),
    Turn("balance", SHIPPED.serial, "order number"),
    Turn("balance", SHIPPED.order_number, "$25.00"),
    Turn("chit-chat", "good morning", "gift card assistant"),
    Turn("balance", PROBE, "serial number"),
)

assert len(SHOPPER) == 40 and SHOPPER[3] == SHOPPER[39]
