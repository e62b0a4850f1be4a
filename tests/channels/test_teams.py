"""Microsoft Teams through Bot Framework: message activities as the Bot Connector sends them,
with a JWT signed by a key the stand-in publishes as the Bot Framework's JWKS, through the real
Rasa and action servers."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

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
ISSUER = "https://api.botframework.com"


class TeamsShopper(Shopper):
    def __init__(self, servers: Servers, platforms: Platforms) -> None:
        self.user_id = f"29:1{secrets.token_urlsafe(30)}"
        self.conversation = f"a:1{secrets.token_urlsafe(40)}"
        super().__init__(servers, platforms.teams, f"botframework:{self.user_id}")
        self.platforms = platforms
        self.url = f"{servers.rasa_url}/webhooks/botframework/webhook"

    def is_mine(self, call: Call) -> bool:
        return call.path.endswith("/activities") and call.body["recipient"]["id"] == self.user_id

    def text_of(self, call: Call) -> str:
        actions = call.body.get("suggestedActions", {}).get("actions", [])
        return " ".join([call.body["text"], *(f"[{a['title']}]" for a in actions)])

    def activity(self, text: str, channel_id: str = "msteams") -> dict[str, Any]:
        """A message activity as the Bot Connector posts it for Teams."""
        return {
            "type": "message",
            "id": f"1{secrets.randbelow(10**12)}",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "serviceUrl": self.platforms.teams.url,
            "channelId": channel_id,
            "from": {"id": self.user_id, "name": "Ann Lee", "aadObjectId": str(uuid.uuid4())},
            "conversation": {
                "conversationType": "personal",
                "tenantId": self.platforms.tenant_id,
                "id": self.conversation,
            },
            "recipient": {"id": f"28:{self.platforms.app_id}", "name": "Gift cards"},
            "textFormat": "plain",
            "locale": "en-US",
            "text": text,
            "channelData": {"tenant": {"id": self.platforms.tenant_id}},
        }

    def token(self, **changes: Any) -> str:
        """The Bot Connector's token for this bot; ``changes`` override claims (or the key)."""
        now = datetime.now(timezone.utc)
        claims = {
            "serviceurl": self.platforms.teams.url,
            "nbf": now - timedelta(seconds=5),
            "exp": now + timedelta(minutes=60),
            "iss": ISSUER,
            "aud": self.platforms.app_id,
        }
        key = changes.pop("key", self.platforms.signing_key)
        kid = changes.pop("kid", self.platforms.key_id)
        claims.update(changes)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def send(self, activity: dict[str, Any], token: str | None = "") -> requests.Response:
        bearer = self.token() if token == "" else token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return requests.post(self.url, json=activity, headers=headers, timeout=30)

    def post(self, text: str) -> requests.Response:
        return self.send(self.activity(text))


@pytest.fixture
def shopper(channel_servers: Servers, platforms: Platforms) -> TeamsShopper:
    return TeamsShopper(channel_servers, platforms)


def test_balance_by_order_number(shopper: TeamsShopper, platforms: Platforms) -> None:
    assert "serial number" in shopper.said("how much money is on my gift card? I don't redeem it")
    assert "order number" in shopper.said(ACTIVE.serial)
    (answer,) = shopper.say(ACTIVE.order_number)
    assert "holds **$50.00** and" in answer.body["text"]
    assert answer.body["textFormat"] == "markdown"
    assert answer.path == f"/v3/conversations/{shopper.conversation}/activities"
    # The app's token came from its own tenant (single-tenant apps).
    (grant,) = platforms.teams.matching(lambda c: c.path.endswith("/oauth2/v2.0/token"))[:1]
    assert grant.path == f"/{platforms.tenant_id}/oauth2/v2.0/token"
    assert grant.body["scope"] == "https://api.botframework.com/.default"
    print("\n".join(shopper.transcript))


def test_buttons_are_suggested_actions_and_a_tap_picks_one(shopper: TeamsShopper) -> None:
    calls = shopper.say("someone on the phone told me to pay my tax bill with gift cards")
    assert calls[-1].body["suggestedActions"] == {
        "to": [shopper.user_id],
        "actions": [
            {"type": "imBack", "title": "Yes, please", "value": "Yes, please"},
            {"type": "imBack", "title": "No, thanks", "value": "No, thanks"},
        ],
    }
    shopper.say("No, thanks")  # what imBack posts
    assert user_texts(shopper.servers, shopper.conversation_id)[-1] == "/deny"


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "attack",
    [
        "no token",
        "signed by another key",
        "an unknown key id",
        "another audience",
        "another issuer",
        "expired",
        "another serviceUrl",
        "key not endorsed for the channel",
        "another tenant",
        "an HS256 token",
    ],
)
def test_a_request_that_fails_the_token_checks_is_refused(
    shopper: TeamsShopper, platforms: Platforms, attack: str
) -> None:
    activity = shopper.activity("hello")
    token: str | None
    if attack == "no token":
        token = None
    elif attack == "signed by another key":
        token = shopper.token(key=_other_key())
    elif attack == "an unknown key id":
        token = shopper.token(key=_other_key(), kid="attackers-key")
    elif attack == "another audience":
        token = shopper.token(aud=str(uuid.uuid4()))
    elif attack == "another issuer":
        token = shopper.token(iss="https://sts.windows.net/attacker/")
    elif attack == "expired":
        token = shopper.token(exp=datetime.now(timezone.utc) - timedelta(minutes=10))
    elif attack == "another serviceUrl":  # the replies would go to the attacker's URL
        activity["serviceUrl"] = "https://attacker.example.com"
        token = shopper.token()
    elif attack == "key not endorsed for the channel":
        activity = shopper.activity("hello", channel_id="webchat")
        token = shopper.token()
    elif attack == "another tenant":
        activity["conversation"]["tenantId"] = str(uuid.uuid4())
        token = shopper.token()
    else:
        token = jwt.encode(
            {"iss": ISSUER, "aud": platforms.app_id, "serviceurl": platforms.teams.url},
            "not-the-key-" + "x" * 32,
            algorithm="HS256",
            headers={"kid": platforms.key_id},
        )
    answer = shopper.send(activity, token)
    assert answer.status_code == 401
    assert user_texts(shopper.servers, shopper.conversation_id) == []


def test_a_redelivered_activity_is_answered_once(shopper: TeamsShopper) -> None:
    activity = shopper.activity("hello")
    assert shopper.send(activity).status_code == 200
    shopper.turns += 1
    wait_for_turns(shopper.servers, shopper.conversation_id, 1)
    assert shopper.send(activity).status_code == 200
    shopper.say("thanks")
    assert user_texts(shopper.servers, shopper.conversation_id) == ["hello", "thanks"]


def test_the_signing_keys_are_fetched_once_and_cached(shopper: TeamsShopper) -> None:
    shopper.say("hello")
    shopper.say("thanks")
    fetched = shopper.stand_in.matching(lambda c: c.path == "/v1/.well-known/keys")
    assert len(fetched) == 1


def test_handoff_and_the_agents_reply_reach_the_shopper(
    shopper: TeamsShopper, wallet: WalletRepository
) -> None:
    assert "support team" in shopper.said("I want to talk to a human")
    handoff_and_agent_reply(shopper, wallet, "botframework")
