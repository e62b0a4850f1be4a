"""Slack: Events API and interactivity payloads as Slack documents them, signed with the v0
scheme (https://api.slack.com/authentication/verifying-requests-from-slack), through the real
Rasa and action servers."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from bot.channels.slack import signature
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


class SlackShopper(Shopper):
    def __init__(self, servers: Servers, platforms: Platforms) -> None:
        self.user = f"U{secrets.token_hex(5).upper()}"
        self.channel = f"D{secrets.token_hex(5).upper()}"
        super().__init__(servers, platforms.slack, f"slack:{self.user}")
        self.url = f"{servers.rasa_url}/webhooks/slack/webhook"
        self.secret = platforms.slack_secret

    def is_mine(self, call: Call) -> bool:
        return call.body["channel"] == self.channel

    def text_of(self, call: Call) -> str:
        parts = []
        for block in call.body["blocks"]:
            if block["type"] == "section":
                parts.append(block["text"]["text"])
            else:
                parts += [f"[{b['text']['text']} -> {b['value']}]" for b in block["elements"]]
        return " ".join(parts)

    def event(self, text: str) -> dict[str, Any]:
        """An ``event_callback`` with a ``message.im`` event, as the Events API sends it."""
        ts = f"{time.time():.6f}"
        return {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": "T0GIFTBOT",
            "api_app_id": "A0GIFTBOT",
            "event": {
                "type": "message",
                "channel": self.channel,
                "user": self.user,
                "text": text,
                "ts": ts,
                "event_ts": ts,
                "channel_type": "im",
            },
            "type": "event_callback",
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
        }

    def click(self, value: str) -> bytes:
        """A ``block_actions`` interaction payload (form-encoded ``payload=``)."""
        payload = {
            "type": "block_actions",
            "user": {"id": self.user, "username": "ann", "team_id": "T0GIFTBOT"},
            "api_app_id": "A0GIFTBOT",
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "container": {"type": "message", "message_ts": "1548261231.000200"},
            "trigger_id": f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}",
            "team": {"id": "T0GIFTBOT", "domain": "giftbot"},
            "channel": {"id": self.channel, "name": "directmessage"},
            "actions": [
                {
                    "action_id": "option_2",
                    "block_id": "=qXel",
                    "text": {"type": "plain_text", "text": "No, thanks"},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    def send(
        self,
        body: bytes,
        content_type: str = "application/json",
        timestamp: int | None = None,
        secret: str | None = None,
        signed: bool = True,
    ) -> requests.Response:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp}
        if signed:
            headers["X-Slack-Signature"] = signature(secret or self.secret, stamp, body)
        return requests.post(self.url, data=body, headers=headers, timeout=30)

    def post(self, text: str) -> requests.Response:
        return self.send(json.dumps(self.event(text)).encode())


@pytest.fixture
def shopper(channel_servers: Servers, platforms: Platforms) -> SlackShopper:
    return SlackShopper(channel_servers, platforms)


def test_balance_by_order_number(shopper: SlackShopper) -> None:
    assert "serial number" in shopper.said("how much money is on my gift card? I don't redeem it")
    assert "order number" in shopper.said(ACTIVE.serial)
    (answer,) = shopper.say(ACTIVE.order_number)
    assert "holds *$50.00*" in shopper.text_of(answer)
    print("\n".join(shopper.transcript))


def test_url_verification_is_answered_when_signed(shopper: SlackShopper) -> None:
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    answer = shopper.send(body)
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert shopper.send(body, signed=False).status_code == 401


def test_buttons_are_an_actions_block_and_a_click_picks_one(shopper: SlackShopper) -> None:
    calls = shopper.say("someone on the phone told me to pay my tax bill with gift cards")
    blocks = calls[-1].body["blocks"]
    assert blocks[-1]["type"] == "actions"
    assert [(b["text"]["text"], b["value"]) for b in blocks[-1]["elements"]] == [
        ("Yes, please", "/affirm"),
        ("No, thanks", "/deny"),
    ]
    answer = shopper.send(shopper.click("/deny"), "application/x-www-form-urlencoded")
    assert answer.status_code == 200
    shopper.turns += 1
    wait_for_turns(shopper.servers, shopper.conversation_id, shopper.turns)
    assert user_texts(shopper.servers, shopper.conversation_id)[-1] == "/deny"


@pytest.mark.parametrize("attack", ["unsigned", "wrong secret", "stale", "tampered"])
def test_a_request_that_fails_the_signature_check_is_refused(
    shopper: SlackShopper, attack: str
) -> None:
    body = json.dumps(shopper.event("what is on card 1712 3456 7890 1234 567")).encode()
    if attack == "unsigned":
        answer = shopper.send(body, signed=False)
    elif attack == "wrong secret":
        answer = shopper.send(body, secret="not-the-signing-secret")
    elif attack == "stale":  # a recorded request replayed six minutes later
        answer = shopper.send(body, timestamp=int(time.time()) - 6 * 60)
    else:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(shopper.secret, stamp, body),
        }
        answer = requests.post(shopper.url, data=body.replace(b"1712", b"1799"), headers=headers)
    assert answer.status_code == 401
    assert user_texts(shopper.servers, shopper.conversation_id) == []
    log = (shopper.servers.var_dir / "log" / "rasa.log").read_text()
    assert "3456 7890" not in log and shopper.user not in log


def test_a_retried_event_is_answered_once(shopper: SlackShopper) -> None:
    body = json.dumps(shopper.event("hello")).encode()
    assert shopper.send(body).status_code == 200
    shopper.turns += 1
    wait_for_turns(shopper.servers, shopper.conversation_id, 1)
    # Slack's retry: the same event, a new timestamp and signature, X-Slack-Retry-Num.
    stamp = str(int(time.time()))
    retry = requests.post(
        shopper.url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(shopper.secret, stamp, body),
            "X-Slack-Retry-Num": "1",
            "X-Slack-Retry-Reason": "http_timeout",
        },
        timeout=30,
    )
    assert retry.status_code == 200
    shopper.say("thanks")
    assert user_texts(shopper.servers, shopper.conversation_id) == ["hello", "thanks"]


def test_handoff_and_the_agents_reply_reach_the_shopper(
    shopper: SlackShopper, wallet: WalletRepository
) -> None:
    assert "support team" in shopper.said("I want to talk to a human")
    handoff_and_agent_reply(shopper, wallet, "slack")
