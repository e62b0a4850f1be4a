"""The messaging platforms the suite's servers are configured for: the local stand-ins
(tests/channels/standins.py) and the secrets each channel was given. Made once per session
(tests/conftest.py), before the servers start, so every platform is down when Rasa starts."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.web.app import create_app
from bot.web.config import WebConfig
from tests.channels import standins
from tests.channels.standins import StandIn


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
