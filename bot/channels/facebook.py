"""Facebook Messenger: the Send API adapter and the channel (``/webhooks/facebook/webhook``).

Meta signs each delivery with ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with
the app secret>``; a delivery without a valid one is refused with 403 (Rasa 3.6.21's channel
checks only the SHA-1 header, with ``==``, and answers 200 when it fails). The webhook's GET
answers Meta's verification handshake only for the configured verify token. Meta redelivers
what it thinks failed: each message ``mid`` is processed once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.base import Inbound, PlatformChannel, constant_time_equal
from bot.channels.http import call
from bot.channels.render import Reply, split, to_plain
from bot.settings import ChannelSettings, FacebookSettings
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

TEXT_LIMIT = 2000
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLIES_LIMIT = 13


def signature(app_secret: str, body: bytes) -> str:
    """Meta's ``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class MessengerApi:
    """The Send API (https://developers.facebook.com/docs/messenger-platform/reference/send-api)."""

    def __init__(self, settings: FacebookSettings) -> None:
        self._url = f"{settings.api_url}/me/messages"
        self._headers = {"Authorization": f"Bearer {settings.page_access_token}"}

    async def send(self, psid: str, message: dict[str, Any], human_agent: bool) -> None:
        body: dict[str, Any] = {"recipient": {"id": psid}, "message": message}
        if human_agent:
            # An agent may answer up to 7 days after the shopper's last message.
            body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        else:
            body["messaging_type"] = "RESPONSE"
        await call("POST", self._url, what="Messenger send", json=body, headers=self._headers)


class FacebookChannel(PlatformChannel):
    platform = "facebook"

    def __init__(
        self, settings: FacebookSettings, store: ChannelsRepository, channels: ChannelSettings
    ) -> None:
        super().__init__(store, channels)
        self.settings = settings
        self.api = MessengerApi(settings)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        if settings.facebook is None:
            raise SystemExit("the facebook channel needs its GIFTBOT_FACEBOOK_... settings")
        return cls(settings.facebook, store, settings)

    def handshake(self, request: Request) -> HTTPResponse:
        """Meta's webhook verification: echo the challenge for our verify token only."""
        mode = request.args.get("hub.mode")
        token = request.args.get("hub.verify_token")
        challenge = request.args.get("hub.challenge") or ""
        if mode == "subscribe" and constant_time_equal(token, self.settings.verify_token):
            return response.text(challenge)
        return response.json({"error": "forbidden"}, status=403)

    async def authenticate(self, request: Request) -> HTTPResponse | None:
        expected = signature(self.settings.app_secret, request.body)
        if constant_time_equal(request.headers.get("X-Hub-Signature-256"), expected):
            return None
        return response.json({"error": "forbidden"}, status=403)

    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        body = request.json
        inbound: list[Inbound] = []
        if body.get("object") != "page":
            return response.text("EVENT_RECEIVED"), inbound
        for entry in body.get("entry") or []:
            for event in entry.get("messaging") or []:
                found = _inbound(event)
                if found is not None:
                    inbound.append(found)
        return response.text("EVENT_RECEIVED"), inbound

    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        pieces = split(reply.text, TEXT_LIMIT, to_plain) or ["Choose one:"]
        for index, piece in enumerate(pieces):
            message: dict[str, Any] = {"text": piece}
            if index == len(pieces) - 1 and reply.options:
                message["quick_replies"] = [
                    {
                        "content_type": "text",
                        "title": option.title[:QUICK_REPLY_TITLE_LIMIT],
                        "payload": option.payload,
                    }
                    for option in reply.options[:QUICK_REPLIES_LIMIT]
                ]
            await self.api.send(recipient_id, message, human_agent=reply.from_agent)


def _inbound(event: dict[str, Any]) -> Inbound | None:
    """A shopper's message or postback in one ``messaging`` event; None for anything else."""
    sender = str(event["sender"]["id"])
    message = event.get("message")
    if isinstance(message, dict) and not message.get("is_echo"):
        quick_reply = message.get("quick_reply")
        if isinstance(quick_reply, dict) and quick_reply.get("payload"):
            return Inbound(message["mid"], sender, str(quick_reply["payload"]), is_payload=True)
        if isinstance(message.get("text"), str):
            return Inbound(message["mid"], sender, message["text"])
    postback = event.get("postback")
    if isinstance(postback, dict) and postback.get("payload"):
        message_id = postback.get("mid") or f"postback:{sender}:{event.get('timestamp')}"
        return Inbound(message_id, sender, str(postback["payload"]), is_payload=True)
    return None
