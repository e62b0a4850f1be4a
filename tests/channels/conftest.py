"""One real Rasa server and action server for the whole package, with every messaging channel
configured and pointed at the local stand-ins (tests/channels/standins.py)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import requests
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.settings import get_settings
from bot.wallet import demo
from bot.wallet.repository import WalletRepository
from bot.web.app import create_app
from bot.web.config import WebConfig
from bot.web.console import HAND_BACK_MESSAGE
from bot.web.rasa_api import RasaApi, agent_payload
from tests.channels import standins
from tests.channels.standins import StandIn, StandInServer
from tests.conftest import agents_available
from tests.servers import Servers

pytestmark = pytest.mark.servers
T = TypeVar("T")


@dataclass
class Platforms:
    """The stand-ins and the secrets the channels were configured with."""

    telegram: StandIn = field(default_factory=lambda: StandIn("telegram"))
    telegram_token: str = "7000001:test-bot-token"
    telegram_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    slack: StandIn = field(default_factory=lambda: StandIn("slack"))
    slack_token: str = field(default_factory=lambda: f"xoxb-{secrets.token_hex(12)}")
    slack_secret: str = field(default_factory=lambda: secrets.token_hex(16))

    messenger: StandIn = field(default_factory=lambda: StandIn("messenger"))
    page_token: str = field(default_factory=lambda: f"EAAG{secrets.token_hex(20)}")
    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    verify_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    twilio: StandIn = field(default_factory=lambda: StandIn("twilio"))
    twilio_sid: str = field(default_factory=lambda: f"AC{secrets.token_hex(16)}")
    twilio_token: str = field(default_factory=lambda: secrets.token_hex(16))
    sms_number: str = "+15005550006"
    whatsapp_number: str = "+14155238886"
    public_url: str = "https://giftbot.example.com"

    teams: StandIn = field(default_factory=lambda: StandIn("teams"))
    app_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    signing_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    key_id: str = field(default_factory=lambda: secrets.token_hex(8))

    store: StandIn = field(default_factory=lambda: StandIn("store"))
    """The web server (bot/web) in demo mode: the store's sign-in page for account links."""

    def env(self) -> dict[str, str]:
        return {
            "GIFTBOT_ACCOUNT_LINK_URL": f"{self.store.url}/link",
            "GIFTBOT_TELEGRAM_BOT_TOKEN": self.telegram_token,
            "GIFTBOT_TELEGRAM_BOT_NAME": "giftbot_test_bot",
            "GIFTBOT_TELEGRAM_SECRET_TOKEN": self.telegram_secret,
            "GIFTBOT_TELEGRAM_API_URL": self.telegram.url,
            "GIFTBOT_SLACK_BOT_TOKEN": self.slack_token,
            "GIFTBOT_SLACK_SIGNING_SECRET": self.slack_secret,
            "GIFTBOT_SLACK_API_URL": self.slack.url,
            "GIFTBOT_FACEBOOK_PAGE_ACCESS_TOKEN": self.page_token,
            "GIFTBOT_FACEBOOK_APP_SECRET": self.app_secret,
            "GIFTBOT_FACEBOOK_VERIFY_TOKEN": self.verify_token,
            "GIFTBOT_FACEBOOK_API_URL": self.messenger.url,
            "GIFTBOT_TWILIO_ACCOUNT_SID": self.twilio_sid,
            "GIFTBOT_TWILIO_AUTH_TOKEN": self.twilio_token,
            "GIFTBOT_TWILIO_NUMBER": self.sms_number,
            "GIFTBOT_TWILIO_WHATSAPP_NUMBER": self.whatsapp_number,
            "GIFTBOT_TWILIO_API_URL": self.twilio.url,
            "GIFTBOT_PUBLIC_URL": self.public_url,
            "GIFTBOT_BOTFRAMEWORK_APP_ID": self.app_id,
            "GIFTBOT_BOTFRAMEWORK_APP_PASSWORD": self.app_password,
            "GIFTBOT_BOTFRAMEWORK_TENANT_ID": self.tenant_id,
            "GIFTBOT_BOTFRAMEWORK_API_URL": self.teams.url,
        }

    def jwks(self) -> dict[str, Any]:
        """The Bot Framework's published keys: ours, endorsed for Teams only."""
        public = json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        key = {**public, "kid": self.key_id, "use": "sig", "endorsements": ["msteams"]}
        return {"keys": [key]}

    def apps(self) -> list[tuple[StandIn, web.Application]]:
        return [
            (self.telegram, standins.telegram_app(self.telegram, self.telegram_token)),
            (self.slack, standins.slack_app(self.slack, self.slack_token)),
            (self.messenger, standins.messenger_app(self.messenger, self.page_token)),
            (self.twilio, standins.twilio_app(self.twilio, self.twilio_sid, self.twilio_token)),
            (
                self.teams,
                standins.botframework_app(
                    self.teams, self.jwks(), self.tenant_id, self.app_id, self.app_password
                ),
            ),
            (self.store, create_app(replace(WebConfig.from_env(), demo_mode=True))),
        ]


@pytest.fixture(scope="package")
def platforms() -> Platforms:
    return Platforms()


@pytest.fixture(scope="package")
def channel_servers(wallet: WalletRepository, platforms: Platforms) -> Iterator[Servers]:
    """Rasa starts first, with every platform configured and every platform down; then the
    stand-ins come up."""
    var_dir = Path(get_settings().var_dir) / "channels"
    running = Servers.start(var_dir, extra_env=platforms.env())
    stand_ins = StandInServer()
    try:
        stand_ins.start(platforms.apps())
        yield running
    finally:
        stand_ins.stop()
        running.stop()
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
