"""Messenger: webhook deliveries as Meta documents them (``object: page``, ``entry[].messaging``),
signed with ``X-Hub-Signature-256``, through the real Rasa and action servers."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import requests

from bot.channels.facebook import signature
from bot.wallet.demo import CARDS
from bot.wallet.repository import WalletRepository
from tests.channels.conftest import (
    Platforms,
    Shopper,
    handoff_and_agent_reply,
    user_texts,
    wait_for_turns,
)
from tests.channels.standins import Call
from tests.servers import Servers

pytestmark = pytest.mark.servers

ACTIVE = CARDS[0]
PAGE_ID = "104857600000001"


class MessengerShopper(Shopper):
    def __init__(self, servers: Servers, platforms: Platforms) -> None:
        self.psid = str(secrets.randbelow(10**15) + 10**15)
        super().__init__(servers, platforms.messenger, f"facebook:{self.psid}")
        self.url = f"{servers.rasa_url}/webhooks/facebook/webhook"
        self.secret = platforms.app_secret

    def is_mine(self, call: Call) -> bool:
        return call.body["recipient"]["id"] == self.psid

    def text_of(self, call: Call) -> str:
        message = call.body["message"]
        replies = [f"[{q['title']} -> {q['payload']}]" for q in message.get("quick_replies", [])]
        return " ".join([message["text"], *replies])

    def delivery(self, message: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "time": now,
                    "messaging": [
                        {
                            "sender": {"id": self.psid},
                            "recipient": {"id": PAGE_ID},
                            "timestamp": now,
                            "message": {"mid": f"m_{secrets.token_urlsafe(24)}", **message},
                        }
                    ],
                }
            ],
        }

    def send(self, delivery: dict[str, Any], secret: str | None = None) -> requests.Response:
        body = json.dumps(delivery).encode()
        headers = {"Content-Type": "application/json"}
        if secret != "":
            headers["X-Hub-Signature-256"] = signature(secret or self.secret, body)
        return requests.post(self.url, data=body, headers=headers, timeout=30)

    def post(self, text: str) -> requests.Response:
        return self.send(self.delivery({"text": text}))


@pytest.fixture
def shopper(channel_servers: Servers, platforms: Platforms) -> MessengerShopper:
    return MessengerShopper(channel_servers, platforms)


def test_balance_by_order_number(shopper: MessengerShopper) -> None:
    assert "serial number" in shopper.said("how much money is on my gift card? I don't redeem it")
    assert "order number" in shopper.said(ACTIVE.serial)
    (answer,) = shopper.say(ACTIVE.order_number)
    assert "holds $50.00 and" in answer.body["message"]["text"]  # no markup on Messenger
    assert answer.body["messaging_type"] == "RESPONSE"
    print("\n".join(shopper.transcript))


def test_the_verification_handshake_needs_the_verify_token(
    shopper: MessengerShopper, platforms: Platforms
) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = requests.get(shopper.url, params={**query, "hub.verify_token": platforms.verify_token})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    wrong = requests.get(shopper.url, params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403 and "1158201444" not in wrong.text


def test_buttons_are_quick_replies_and_a_tap_picks_one(shopper: MessengerShopper) -> None:
    calls = shopper.say("someone on the phone told me to pay my tax bill with gift cards")
    assert calls[-1].body["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Yes, please", "payload": "/affirm"},
        {"content_type": "text", "title": "No, thanks", "payload": "/deny"},
    ]
    tap = shopper.delivery({"text": "No, thanks", "quick_reply": {"payload": "/deny"}})
    assert shopper.send(tap).status_code == 200
    shopper.turns += 1
    wait_for_turns(shopper.servers, shopper.conversation_id, shopper.turns)
    assert user_texts(shopper.servers, shopper.conversation_id)[-1] == "/deny"


@pytest.mark.parametrize("secret", ["", "not-the-app-secret"], ids=["unsigned", "wrong"])
def test_a_delivery_that_fails_the_signature_check_is_refused(
    shopper: MessengerShopper, secret: str
) -> None:
    answer = shopper.send(shopper.delivery({"text": "hello"}), secret=secret)
    assert answer.status_code == 403
    assert user_texts(shopper.servers, shopper.conversation_id) == []


def test_a_tampered_delivery_is_refused(shopper: MessengerShopper) -> None:
    body = json.dumps(shopper.delivery({"text": "hello"})).encode()
    headers = {"X-Hub-Signature-256": signature(shopper.secret, body)}
    tampered = body.replace(b"hello", b"hullo")
    answer = requests.post(shopper.url, data=tampered, headers=headers, timeout=30)
    assert answer.status_code == 403
    assert user_texts(shopper.servers, shopper.conversation_id) == []


def test_a_redelivered_message_is_answered_once(shopper: MessengerShopper) -> None:
    delivery = shopper.delivery({"text": "hello"})
    assert shopper.send(delivery).status_code == 200
    shopper.turns += 1
    wait_for_turns(shopper.servers, shopper.conversation_id, 1)
    answered = len(shopper.sent())
    assert shopper.send(delivery).status_code == 200  # Meta redelivers the same mid
    shopper.say("thanks")
    assert user_texts(shopper.servers, shopper.conversation_id) == ["hello", "thanks"]
    assert answered >= 1


def test_handoff_and_the_agents_reply_reach_the_shopper(
    shopper: MessengerShopper, wallet: WalletRepository
) -> None:
    assert "support team" in shopper.said("I want to talk to a human")
    handoff_and_agent_reply(shopper, wallet, "facebook")
    *agent_calls, back = shopper.sent()[-4:]
    assert back.body["messaging_type"] == "RESPONSE"  # the assistant's own words
    # The agent may answer after Messenger's 24-hour window: the HUMAN_AGENT tag.
    assert {(c.body["messaging_type"], c.body.get("tag")) for c in agent_calls} == {
        ("MESSAGE_TAG", "HUMAN_AGENT")
    }
