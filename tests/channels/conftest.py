"""One real Rasa server and action server for the whole package, with every messaging channel
configured and pointed at the local stand-ins (tests/channels/standins.py)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.settings import get_settings
from bot.wallet import demo
from bot.wallet.repository import WalletRepository
from bot.web.rasa_api import agent_payload
from tests.channels import standins
from tests.channels.standins import StandIn, StandInServer
from tests.conftest import agents_available
from tests.servers import Servers

pytestmark = pytest.mark.servers


@dataclass
class Platforms:
    """The stand-ins and the secrets the channels were configured with."""

    telegram: StandIn = field(default_factory=lambda: StandIn("telegram"))
    telegram_token: str = "7000001:test-bot-token"
    telegram_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def env(self) -> dict[str, str]:
        return {
            "GIFTBOT_TELEGRAM_BOT_TOKEN": self.telegram_token,
            "GIFTBOT_TELEGRAM_BOT_NAME": "giftbot_test_bot",
            "GIFTBOT_TELEGRAM_SECRET_TOKEN": self.telegram_secret,
            "GIFTBOT_TELEGRAM_API_URL": self.telegram.url,
        }


@pytest.fixture(scope="package")
def platforms() -> Platforms:
    return Platforms()


@pytest.fixture(scope="package")
def channel_servers(wallet: WalletRepository, platforms: Platforms) -> Iterator[Servers]:
    """Rasa starts first, with every platform down; then the stand-ins come up."""
    var_dir = Path(get_settings().var_dir) / "channels"
    running = Servers.start(var_dir, extra_env=platforms.env())
    stand_ins = StandInServer()
    try:
        stand_ins.start(
            [
                (
                    platforms.telegram,
                    standins.telegram_app(platforms.telegram, platforms.telegram_token),
                ),
            ]
        )
        yield running
    finally:
        stand_ins.stop()
        running.stop()


@pytest.fixture(autouse=True)
def an_agent_is_available(wallet: WalletRepository) -> Iterator[None]:
    with agents_available(wallet, True):
        yield


def tracker_events(servers: Servers, conversation_id: str) -> list[dict[str, Any]]:
    """The conversation's events as Rasa's tracker store keeps them."""
    answer = requests.get(
        f"{servers.rasa_url}/conversations/{conversation_id}/tracker",
        params={"token": servers.api_token, "include_events": "ALL"},
        timeout=30,
    )
    answer.raise_for_status()
    return list(answer.json()["events"])


def user_texts(servers: Servers, conversation_id: str) -> list[str]:
    return [
        e.get("text") or ""
        for e in tracker_events(servers, conversation_id)
        if e["event"] == "user"
    ]


def act_as_agent(servers: Servers, conversation_id: str, events: list[dict[str, Any]]) -> None:
    """What the agent console does (bot/web/rasa_api.RasaApi.append)."""
    answer = requests.post(
        f"{servers.rasa_url}/conversations/{conversation_id}/tracker/events",
        params={
            "token": servers.api_token,
            "output_channel": "latest",
            "execute_side_effects": "true",
        },
        json=events,
        timeout=30,
    )
    answer.raise_for_status()


def wait_for_turns(servers: Servers, conversation_id: str, user_turns: int) -> None:
    """Until Rasa has processed ``user_turns`` messages of the conversation and is listening.

    Every reply is sent (awaited) before Rasa saves the turn, so the stand-in has them all then.
    """
    deadline = time.monotonic() + standins.WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        events = tracker_events(servers, conversation_id)
        users = sum(1 for e in events if e["event"] == "user")
        if (
            users >= user_turns
            and events[-1]["event"] == "action"
            and (events[-1].get("name") == "action_listen")
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"{conversation_id}: turn {user_turns} was not processed")


class Shopper:
    """A platform user talking to the assistant through the platform's webhook."""

    def __init__(self, servers: Servers, stand_in: StandIn, conversation_id: str) -> None:
        self.servers, self.stand_in, self.conversation_id = servers, stand_in, conversation_id
        self.turns = 0
        self.transcript: list[str] = []

    def is_mine(self, call: standins.Call) -> bool:
        """A call of the stand-in that sends this shopper a message."""
        raise NotImplementedError

    def text_of(self, call: standins.Call) -> str:
        raise NotImplementedError

    def post(self, text: str) -> requests.Response:
        """The platform's signed webhook request carrying ``text``."""
        raise NotImplementedError

    def sent(self) -> list[standins.Call]:
        return self.stand_in.matching(self.is_mine)

    def say(self, text: str) -> list[standins.Call]:
        """Send ``text`` the platform's way; the calls that carried the assistant's answer."""
        before = len(self.sent())
        answer = self.post(text)
        assert answer.status_code == 200, answer.text
        self.turns += 1
        wait_for_turns(self.servers, self.conversation_id, self.turns)
        calls = self.sent()[before:]
        self.transcript.append(f"shopper> {text}")
        self.transcript += [f"{self.stand_in.name}< {self.text_of(call)}" for call in calls]
        return calls

    def said(self, text: str) -> str:
        return "\n".join(self.text_of(call) for call in self.say(text))


def handoff_and_agent_reply(shopper: Shopper, wallet: WalletRepository, channel: str) -> None:
    """The shopper asked for a person: the console shows the channel, and the agent's join,
    reply and hand-back reach the shopper on their platform (as the console sends them)."""
    request = wallet.open_handoff(shopper.conversation_id)
    assert request is not None
    handoff = wallet.get_handoff(request["id"])
    assert handoff is not None and handoff.channel == channel
    wallet.take_handoff(handoff.id, demo.DEMO_AGENT[0])
    before = len(shopper.sent())
    name = demo.DEMO_AGENT[1]
    act_as_agent(
        shopper.servers,
        shopper.conversation_id,
        [
            {"event": "pause"},
            agent_payload({"event": "agent_joined", "agent": {"name": name}}),
            agent_payload({"text": "Hi, how can I help?", "agent": {"name": name}}),
        ],
    )
    joined, said = shopper.stand_in.wait_for(shopper.is_mine, before + 2)[before:]
    assert shopper.text_of(joined) == f"{name} from our support team has joined the conversation."
    assert shopper.text_of(said) == f"{name}: Hi, how can I help?"
    wallet.hand_back(handoff.id, demo.DEMO_AGENT[0])
    act_as_agent(
        shopper.servers,
        shopper.conversation_id,
        [
            {"event": "resume"},
            agent_payload({"event": "agent_left", "agent": {"name": name}}),
        ],
    )
    (left,) = shopper.stand_in.wait_for(shopper.is_mine, before + 3)[before + 2 :]
    assert shopper.text_of(left) == f"{name} has left the conversation."
    shopper.transcript += [
        f"{shopper.stand_in.name}< {shopper.text_of(call)}" for call in (joined, said, left)
    ]
