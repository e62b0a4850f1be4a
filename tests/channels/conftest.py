"""The suite's Rasa and action servers, started with every messaging channel configured and
pointed at the local stand-ins (tests/channels/platforms.py, standins.py), which this package
brings up."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
import requests

from bot.wallet import demo
from bot.wallet.repository import WalletRepository
from bot.web.console import HAND_BACK_MESSAGE
from bot.web.rasa_api import RasaApi, agent_payload
from tests.channels import standins
from tests.channels.platforms import Platforms
from tests.channels.standins import StandIn, StandInServer
from tests.conftest import agents_available
from tests.servers import Servers

pytestmark = pytest.mark.servers
T = TypeVar("T")


@pytest.fixture(scope="package")
def channel_servers(servers: Servers, platforms: Platforms) -> Iterator[Servers]:
    """The suite's servers, which started with every platform configured and every platform
    down (tests/conftest.py); then the stand-ins come up."""
    stand_ins = StandInServer()
    try:
        stand_ins.start(platforms.apps())
        yield servers
    finally:
        stand_ins.stop()
        record = os.environ.get("GIFTBOT_CHANNELS_RECORD")
        p = platforms
        if record:  # every call the stand-ins recorded, for reading (JSON lines)
            with open(record, "w") as out:
                for stand_in in (p.telegram, p.slack, p.messenger, p.twilio, p.teams):
                    for call in stand_in.calls:
                        line = {"platform": stand_in.name, "path": call.path, "body": call.body}
                        out.write(json.dumps(line) + "\n")


@pytest.fixture(autouse=True)
def an_agent_is_available(wallet: WalletRepository) -> Iterator[None]:
    with agents_available(wallet, True):
        yield


async def _console(servers: Servers, call: Callable[[RasaApi], Awaitable[T]]) -> T:
    async with aiohttp.ClientSession() as session:
        return await call(RasaApi(servers.rasa_url, servers.api_token, session))


def tracker_events(servers: Servers, conversation_id: str) -> list[dict[str, Any]]:
    """The conversation's events as Rasa's tracker store keeps them, read the way the agent
    console reads them (bot/web/rasa_api.RasaApi)."""
    tracker = asyncio.run(_console(servers, lambda api: api.tracker(conversation_id)))
    # Rasa read this very conversation (an escaped id would silently read an empty one).
    assert tracker["sender_id"] == conversation_id
    return list(tracker["events"])


def user_texts(servers: Servers, conversation_id: str) -> list[str]:
    return [
        e.get("text") or ""
        for e in tracker_events(servers, conversation_id)
        if e["event"] == "user"
    ]


def act_as_agent(servers: Servers, conversation_id: str, events: list[dict[str, Any]]) -> None:
    """What the agent console does: append events, bot events sent to the latest channel."""
    asyncio.run(_console(servers, lambda api: api.append(conversation_id, events)))


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
        """What the platform accepted for this shopper (a call it refused never arrived)."""
        return self.stand_in.matching(self.delivered)

    def delivered(self, call: standins.Call) -> bool:
        return call.accepted and self.is_mine(call)

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

    def command(self, text: str) -> str:
        """Something the channel answers itself, without Rasa (account linking)."""
        before = len(self.sent())
        assert self.post(text).status_code == 200
        (call,) = self.stand_in.wait_for(self.delivered, before + 1)[before:]
        self.transcript += [f"shopper> {text}", f"{self.stand_in.name}< {self.text_of(call)}"]
        return self.text_of(call)

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
    joined, said = shopper.stand_in.wait_for(shopper.delivered, before + 2)[before:]
    assert shopper.text_of(joined) == f"{name} from our support team has joined the conversation."
    assert shopper.text_of(said) == f"{name}: Hi, how can I help?"
    wallet.hand_back(handoff.id, demo.DEMO_AGENT[0])
    act_as_agent(
        shopper.servers,
        shopper.conversation_id,
        [  # as the console hands back (bot/web/console.hand_back)
            {"event": "resume"},
            agent_payload({"event": "agent_left", "agent": {"name": name}}),
            {"event": "bot", "text": HAND_BACK_MESSAGE},
        ],
    )
    left, back = shopper.stand_in.wait_for(shopper.delivered, before + 4)[before + 2 :]
    assert shopper.text_of(left) == f"{name} has left the conversation."
    assert shopper.text_of(back) == HAND_BACK_MESSAGE
    shopper.transcript += [
        f"{shopper.stand_in.name}< {shopper.text_of(call)}" for call in (joined, said, left, back)
    ]
    print("\n".join(shopper.transcript))  # the transcript as the stand-in recorded it (-s)
