"""Telegram: updates as the Bot API documents them (https://core.telegram.org/bots/api#update),
with the secret token setWebhook registered, through the real Rasa and action servers."""

from __future__ import annotations

import itertools
import random
import time

import pytest
import requests

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
_update_ids = itertools.count(random.randrange(10**6, 10**7))


class TelegramShopper(Shopper):
    def __init__(self, servers: Servers, platforms: Platforms) -> None:
        self.chat_id = random.randrange(10**8, 10**9)
        super().__init__(servers, platforms.telegram, f"telegram:{self.chat_id}")
        self.url = f"{servers.rasa_url}/webhooks/telegram/webhook"
        self.secret = platforms.telegram_secret

    def is_mine(self, call: Call) -> bool:
        return call.path.endswith("/sendMessage") and call.body["chat_id"] == str(self.chat_id)

    def text_of(self, call: Call) -> str:
        keyboard = call.body.get("reply_markup", {}).get("inline_keyboard", [])
        buttons = [f"[{row[0]['text']} -> {row[0]['callback_data']}]" for row in keyboard]
        return " ".join([call.body["text"], *buttons])

    def _user(self) -> dict[str, object]:
        return {"id": self.chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}

    def update(self, text: str) -> dict[str, object]:
        return {
            "update_id": next(_update_ids),
            "message": {
                "message_id": random.randrange(1, 10**6),
                "from": self._user(),
                "chat": {"id": self.chat_id, "first_name": "Ann", "type": "private"},
                "date": int(time.time()),
                "text": text,
            },
        }

    def tap(self, callback_data: str) -> dict[str, object]:
        return {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(random.randrange(10**15, 10**16)),
                "from": self._user(),
                "message": {
                    "message_id": 7,
                    "from": {"id": 7000001, "is_bot": True, "first_name": "Gift cards"},
                    "chat": {"id": self.chat_id, "type": "private"},
                    "date": int(time.time()),
                    "text": "Would you like me to connect you with a person?",
                },
                "chat_instance": "-4467781296413375931",
                "data": callback_data,
            },
        }

    def send(self, update: dict[str, object], secret: str | None = "") -> requests.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret if secret == "" else secret}
        if secret is None:
            headers = {}
        return requests.post(self.url, json=update, headers=headers, timeout=30)

    def post(self, text: str) -> requests.Response:
        return self.send(self.update(text))

    def say_update(self, update: dict[str, object]) -> list[Call]:
        """Send a prepared update (a button tap, or one to redeliver later) as a turn."""
        before = len(self.sent())
        assert self.send(update).status_code == 200
        self.turns += 1
        wait_for_turns(self.servers, self.conversation_id, self.turns)
        return self.sent()[before:]


@pytest.fixture
def shopper(channel_servers: Servers, platforms: Platforms) -> TelegramShopper:
    return TelegramShopper(channel_servers, platforms)


def test_balance_by_order_number(shopper: TelegramShopper) -> None:
    assert "serial number" in shopper.said("how much money is on my gift card? I don't redeem it")
    assert "order number" in shopper.said(ACTIVE.serial)
    (answer,) = shopper.say(ACTIVE.order_number)
    assert answer.body["parse_mode"] == "HTML"
    assert "holds <b>$50.00</b>" in answer.body["text"]
    print("\n".join(shopper.transcript))


def test_buttons_are_an_inline_keyboard_and_a_tap_picks_one(shopper: TelegramShopper) -> None:
    calls = shopper.say("someone on the phone told me to pay my tax bill with gift cards")
    offer = calls[-1].body
    assert offer["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes, please", "callback_data": "/affirm"}],
            [{"text": "No, thanks", "callback_data": "/deny"}],
        ]
    }
    shopper.say_update(shopper.tap("/deny"))
    assert user_texts(shopper.servers, shopper.conversation_id)[-1] == "/deny"
    # Telegram's spinner on the button is stopped.
    assert shopper.stand_in.matching(lambda c: c.path.endswith("/answerCallbackQuery"))


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"], ids=["unsigned", "empty", "wrong"])
def test_a_request_without_the_secret_token_is_refused(
    shopper: TelegramShopper, secret: str | None
) -> None:
    update = shopper.update("how much is on my card 1712 3456 7890 1234 567")
    answer = requests.post(
        shopper.url,
        json=update,
        headers={} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret},
        timeout=30,
    )
    assert answer.status_code == 401
    assert user_texts(shopper.servers, shopper.conversation_id) == []


def test_a_redelivered_update_is_answered_once(shopper: TelegramShopper) -> None:
    update = shopper.update("hello")
    greeting = shopper.say_update(update)
    assert greeting
    assert shopper.send(update).status_code == 200  # Telegram retries what it thinks failed
    shopper.say("thanks")  # a later turn: the redelivery was taken in before it
    assert user_texts(shopper.servers, shopper.conversation_id) == ["hello", "thanks"]


def test_handoff_and_the_agents_reply_reach_the_shopper(
    shopper: TelegramShopper, wallet: WalletRepository
) -> None:
    assert "support team" in shopper.said("I want to talk to a human")
    handoff_and_agent_reply(shopper, wallet, "telegram")
