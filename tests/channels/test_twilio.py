"""Twilio SMS and WhatsApp: incoming-message webhooks as Twilio documents them (form-encoded,
``X-Twilio-Signature`` over the public URL and the sorted parameters), through the real Rasa and
action servers."""

from __future__ import annotations

import secrets

import pytest
import requests

from bot.channels.twilio import signature
from bot.settings import get_settings
from bot.wallet.demo import CARDS
from bot.wallet.repository import WalletRepository
from bot.wallet.repository.channels import ChannelsRepository
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


class TextingShopper(Shopper):
    def __init__(self, servers: Servers, platforms: Platforms, whatsapp: bool = False) -> None:
        number = f"+1555{secrets.randbelow(10**7):07d}"
        self.address = f"whatsapp:{number}" if whatsapp else number
        super().__init__(servers, platforms.twilio, f"twilio:{self.address}")
        self.platforms = platforms
        self.ours = f"whatsapp:{platforms.whatsapp_number}" if whatsapp else platforms.sms_number
        self.url = f"{servers.rasa_url}/webhooks/twilio/webhook"
        self.signed_url = f"{platforms.public_url}/webhooks/twilio/webhook"

    def is_mine(self, call: Call) -> bool:
        return call.body["To"] == self.address

    def text_of(self, call: Call) -> str:
        return str(call.body["Body"])

    def message(self, text: str) -> dict[str, str]:
        """The parameters of Twilio's incoming-message request."""
        sid = f"SM{secrets.token_hex(16)}"
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": text,
            "To": self.ours,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.platforms.twilio_sid,
            "From": self.address,
            "ApiVersion": "2010-04-01",
        }
        if self.address.startswith("whatsapp:"):
            params.update(ProfileName="Ann", WaId=self.address.removeprefix("whatsapp:+"))
        return params

    def send(self, params: dict[str, str], sign_with: str | None = None) -> requests.Response:
        token = self.platforms.twilio_token if sign_with is None else sign_with
        headers = {"X-Twilio-Signature": signature(token, self.signed_url, params)}
        return requests.post(self.url, data=params, headers=headers, timeout=30)

    def post(self, text: str) -> requests.Response:
        return self.send(self.message(text))


@pytest.fixture
def texter(channel_servers: Servers, platforms: Platforms) -> TextingShopper:
    return TextingShopper(channel_servers, platforms)


@pytest.fixture
def whatsapp(channel_servers: Servers, platforms: Platforms) -> TextingShopper:
    return TextingShopper(channel_servers, platforms, whatsapp=True)


def test_balance_by_order_number_by_sms(texter: TextingShopper) -> None:
    assert "serial number" in texter.said("how much money is on my gift card? I don't redeem it")
    assert "order number" in texter.said(ACTIVE.serial)
    (answer,) = texter.say(ACTIVE.order_number)
    assert "holds $50.00 and" in answer.body["Body"]
    assert answer.body["From"] == texter.platforms.sms_number
    print("\n".join(texter.transcript))


def test_balance_by_order_number_on_whatsapp(whatsapp: TextingShopper) -> None:
    whatsapp.say("how much money is on my gift card? I don't redeem it")
    whatsapp.say(ACTIVE.serial)
    (answer,) = whatsapp.say(ACTIVE.order_number)
    assert "holds $50.00 and" in answer.body["Body"]
    assert answer.body["From"] == f"whatsapp:{whatsapp.platforms.whatsapp_number}"
    print("\n".join(whatsapp.transcript))


def test_a_numbered_answer_picks_the_option(
    texter: TextingShopper, wallet: WalletRepository
) -> None:
    calls = texter.say("what's the weather like tomorrow")
    settings = get_settings()
    store = ChannelsRepository(wallet.engine, settings.claim_code_secret, settings.sealing_key)
    offered = store.offered_options("twilio", texter.address)
    assert len(offered) >= 2
    listed = [f"{n}. {option['title']}" for n, option in enumerate(offered, 1)]
    assert calls[-1].body["Body"].endswith("\n".join(["", *listed, "(Reply with a number.)"]))
    texter.say("2")
    assert user_texts(texter.servers, texter.conversation_id)[-1] == offered[1]["payload"]
    # The options answer one message only: what the assistant offers now, if anything.
    assert store.offered_options("twilio", texter.address) != offered


@pytest.mark.parametrize("attack", ["unsigned", "wrong token", "tampered", "other account"])
def test_a_request_that_fails_the_signature_check_is_refused(
    texter: TextingShopper, attack: str
) -> None:
    params = texter.message("hello")
    if attack == "unsigned":
        answer = requests.post(texter.url, data=params, timeout=30)
    elif attack == "wrong token":
        answer = texter.send(params, sign_with="not-the-auth-token")
    elif attack == "tampered":
        headers = {
            "X-Twilio-Signature": signature(
                texter.platforms.twilio_token, texter.signed_url, params
            )
        }
        answer = requests.post(texter.url, data={**params, "Body": "hullo"}, headers=headers)
    else:
        answer = texter.send({**params, "AccountSid": f"AC{secrets.token_hex(16)}"})
    assert answer.status_code == 403
    assert user_texts(texter.servers, texter.conversation_id) == []


def test_a_redelivered_message_is_answered_once(texter: TextingShopper) -> None:
    params = texter.message("hello")
    assert texter.send(params).status_code == 200
    texter.turns += 1
    wait_for_turns(texter.servers, texter.conversation_id, 1)
    texter.say("thanks")
    assert texter.send(params).status_code == 200  # Twilio's retry of the same MessageSid
    texter.say("bye")
    assert user_texts(texter.servers, texter.conversation_id) == ["hello", "thanks", "bye"]


def test_a_message_without_a_body_is_acknowledged_and_ignored(texter: TextingShopper) -> None:
    params = texter.message("")
    del params["Body"]
    params["NumMedia"] = "1"
    answer = texter.send(params)
    assert answer.status_code == 200 and "<Response>" in answer.text
    assert user_texts(texter.servers, texter.conversation_id) == []


def test_handoff_and_the_agents_reply_reach_the_shopper(
    whatsapp: TextingShopper, wallet: WalletRepository
) -> None:
    assert "support team" in whatsapp.said("I want to talk to a human")
    handoff_and_agent_reply(whatsapp, wallet, "twilio")
