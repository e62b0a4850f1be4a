"""Microsoft Teams through Bot Framework: the Connector adapter and the channel
(``/webhooks/botframework/webhook``).

Each activity comes with a JWT from the Bot Connector service, checked the way "Authentication
with the Bot Connector API" prescribes: RS256 with a key from the Bot Framework's JWKS
(fetched lazily with a timeout, cached, refetched when an unknown key id appears), issuer
``https://api.botframework.com``, audience the app id, not expired (5 minutes' clock skew), the
key endorsed for the activity's channel, and the ``serviceurl`` claim equal to the activity's
``serviceUrl`` (the only URL replies then go to). Rasa 3.6.21's BotFramework channel fetches the
OpenID configuration in its constructor (offline, Rasa does not start), does not check issuer or
service URL, and gets its token for multi-tenant apps only; this one asks the app's tenant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import jwt
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.base import Inbound, PlatformChannel
from bot.channels.http import PlatformError, call
from bot.channels.render import Reply, split
from bot.settings import BotFrameworkSettings, ChannelSettings
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

ISSUER = "https://api.botframework.com"
OPENID_PATH = "/v1/.well-known/openidconfiguration"
OPENID_BASE = "https://login.botframework.com"
LOGIN_BASE = "https://login.microsoftonline.com"  # where the app gets its tokens
CONNECTOR_SCOPE = "https://api.botframework.com/.default"
CLOCK_SKEW_SECONDS = 5 * 60
KEYS_LIFETIME_SECONDS = 24 * 3600
REFETCH_AFTER_SECONDS = 5 * 60  # an unknown key id refetches the keys, at most this often
TEXT_LIMIT = 4000


class AuthenticationError(Exception):
    """The request's token is missing or does not pass a check; says which, never the token."""


class BotFrameworkKeys:
    """The Bot Framework's signing keys, fetched on first use and cached."""

    def __init__(self, openid_url: str) -> None:
        self._openid_url = openid_url
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> dict[str, Any]:
        stale = time.monotonic() - self._fetched_at
        if kid not in self._keys or stale > KEYS_LIFETIME_SECONDS:
            async with self._lock:
                stale = time.monotonic() - self._fetched_at
                if (kid not in self._keys and stale > REFETCH_AFTER_SECONDS) or (
                    stale > KEYS_LIFETIME_SECONDS
                ):
                    await self._fetch()
        if kid not in self._keys:
            raise AuthenticationError("signed with an unknown key")
        return self._keys[kid]

    async def _fetch(self) -> None:
        try:
            config = await call("GET", self._openid_url, what="Bot Framework OpenID")
            jwks = await call("GET", str(config["jwks_uri"]), what="Bot Framework JWKS")
            keys = {str(k["kid"]): k for k in jwks["keys"] if "kid" in k}
        except (PlatformError, KeyError, TypeError) as exc:
            raise AuthenticationError(f"the signing keys are unavailable ({exc})") from exc
        self._keys, self._fetched_at = keys, time.monotonic()


class ConnectorApi:
    """Replies through the Bot Connector: an app token from the tenant, then the activity."""

    def __init__(self, settings: BotFrameworkSettings) -> None:
        base = settings.api_url or LOGIN_BASE
        self._token_url = f"{base}/{quote(settings.tenant_id, safe='')}/oauth2/v2.0/token"
        self._settings = settings
        self._token: tuple[str, float] | None = None

    async def _access_token(self) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        answer = await call(
            "POST",
            self._token_url,
            what="Bot Framework token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._settings.app_id,
                "client_secret": self._settings.app_password,
                "scope": CONNECTOR_SCOPE,
            },
        )
        token, lifetime = str(answer["access_token"]), int(answer.get("expires_in", 3600))
        self._token = (token, time.monotonic() + max(lifetime - 300, 60))
        return token

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> None:
        url = (
            f"{service_url.rstrip('/')}/v3/conversations/"
            f"{quote(conversation_id, safe='')}/activities"
        )
        token = await self._access_token()
        await call(
            "POST",
            url,
            what="Bot Connector send",
            json=activity,
            headers={"Authorization": f"Bearer {token}"},
        )


class BotFrameworkChannel(PlatformChannel):
    platform = "botframework"

    def __init__(
        self, settings: BotFrameworkSettings, store: ChannelsRepository, channels: ChannelSettings
    ) -> None:
        super().__init__(store, channels)
        self.settings = settings
        self.keys = BotFrameworkKeys(f"{settings.api_url or OPENID_BASE}{OPENID_PATH}")
        self.api = ConnectorApi(settings)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        if settings.botframework is None:
            raise SystemExit("the botframework channel needs its GIFTBOT_BOTFRAMEWORK_... settings")
        return cls(settings.botframework, store, settings)

    async def authenticate(self, request: Request) -> HTTPResponse | None:
        try:
            activity = json.loads(request.body)
            if not isinstance(activity, dict):
                raise AuthenticationError("not an activity")
            await self.verify(request.headers.get("Authorization"), activity)
        except (AuthenticationError, ValueError) as exc:
            logger.warning("botframework: %s", exc)
            return response.json({"error": "unauthorized"}, status=401)
        return None

    async def verify(self, authorization: str | None, activity: dict[str, Any]) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationError("no bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("a malformed token") from exc
        if header.get("alg") != "RS256":
            raise AuthenticationError("not signed with RS256")
        jwk = await self.keys.key(str(header.get("kid")))
        channel_id = str(activity.get("channelId") or "")
        if channel_id not in (jwk.get("endorsements") or []):
            raise AuthenticationError("the key is not endorsed for the activity's channel")
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(jwk, algorithm="RS256").key,
                algorithms=["RS256"],
                audience=self.settings.app_id,
                issuer=ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the token does not verify ({type(exc).__name__})") from exc
        if claims.get("serviceurl") != activity.get("serviceUrl"):
            raise AuthenticationError("the token does not endorse the activity's serviceUrl")
        conversation = activity.get("conversation")
        tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
        if tenant is not None and tenant != self.settings.tenant_id:
            raise AuthenticationError("an activity from another tenant")

    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        activity = request.json
        answer = response.empty(status=200)
        if activity.get("type") != "message" or not isinstance(activity.get("text"), str):
            return answer, []  # conversationUpdate, typing, reactions: nothing to answer
        user = activity["from"]
        reference = {
            "service_url": activity["serviceUrl"],
            "conversation_id": activity["conversation"]["id"],
            "bot": activity["recipient"],
            "user": {"id": user["id"], "name": user.get("name", "")},
        }
        return answer, [Inbound(str(activity["id"]), str(user["id"]), activity["text"], reference)]

    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        reference = await self.reference(recipient_id)
        if not reference.get("service_url"):
            logger.warning("botframework: no conversation to answer in")
            return
        pieces = split(reply.text, TEXT_LIMIT) or ["Choose one:"]
        for index, piece in enumerate(pieces):
            activity: dict[str, Any] = {
                "type": "message",
                "from": reference["bot"],
                "recipient": reference["user"],
                "conversation": {"id": reference["conversation_id"]},
                "text": piece,
                "textFormat": "markdown",
            }
            if index == len(pieces) - 1 and reply.options:
                # imBack posts the title as the shopper's message; it is mapped back to the
                # payload with the options offered (like a number typed on SMS).
                activity["suggestedActions"] = {
                    "to": [recipient_id],
                    "actions": [
                        {"type": "imBack", "title": option.title, "value": option.title}
                        for option in reply.options
                    ],
                }
            await self.api.send(reference["service_url"], reference["conversation_id"], activity)
