"""Twilio SMS and WhatsApp: the Messages API adapter and the channel
(``/webhooks/twilio/webhook`` for both).

Twilio signs each webhook: ``X-Twilio-Signature`` is the base64 HMAC-SHA1, keyed with the auth
token, of the full URL Twilio called (``GIFTBOT_PUBLIC_URL`` + the route) followed by every POST
parameter's name and value in name order. Rasa 3.6.21's channel checks nothing, and fails on a
message without ``Body``. Buttons become numbered options: the shopper answers "2".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping

import aiohttp
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.base import Inbound, PlatformChannel, constant_time_equal
from bot.channels.http import call
from bot.channels.registry import webhook_url
from bot.channels.render import Reply, numbered, split, to_plain
from bot.settings import ChannelSettings, TwilioSettings
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

BODY_LIMIT = 1600  # characters of a message's Body (SMS and WhatsApp)
WHATSAPP = "whatsapp:"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a form POST to ``url``."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioApi:
    """Create a Message (https://www.twilio.com/docs/messaging/api/message-resource)."""

    def __init__(self, settings: TwilioSettings) -> None:
        self._url = f"{settings.api_url}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self._auth = aiohttp.BasicAuth(settings.account_sid, settings.auth_token)

    async def send(self, sender: str, to: str, body: str) -> None:
        await call(
            "POST",
            self._url,
            what="Twilio Messages",
            data={"From": sender, "To": to, "Body": body},
            auth=self._auth,
        )


class TwilioChannel(PlatformChannel):
    platform = "twilio"

    def __init__(
        self, settings: TwilioSettings, store: ChannelsRepository, channels: ChannelSettings
    ) -> None:
        super().__init__(store, channels)
        self.settings = settings
        self.api = TwilioApi(settings)
        self.signed_url = webhook_url(settings.public_url, self.platform)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        if settings.twilio is None:
            raise SystemExit("the twilio channel needs its GIFTBOT_TWILIO_... settings")
        return cls(settings.twilio, store, settings)

    async def authenticate(self, request: Request) -> HTTPResponse | None:
        params = {name: values[0] for name, values in request.form.items()}
        expected = signature(self.settings.auth_token, self.signed_url, params)
        if constant_time_equal(request.headers.get("X-Twilio-Signature"), expected) and (
            params.get("AccountSid") == self.settings.account_sid
        ):
            return None
        return response.text("forbidden", status=403)

    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        form = request.form
        answer = response.text(EMPTY_TWIML, content_type="text/xml")
        text = (form.get("Body") or "").strip()
        if not text:  # a picture or a location: nothing to read
            return answer, []
        message_id, sender = form.get("MessageSid"), form.get("From")
        if not message_id or not sender:
            raise ValueError("a message without MessageSid or From")
        return answer, [Inbound(message_id, sender, text)]

    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        whatsapp = recipient_id.startswith(WHATSAPP)
        number = self.settings.whatsapp_number if whatsapp else self.settings.sms_number
        if number is None:
            logger.warning("twilio: no %s number is configured", "WhatsApp" if whatsapp else "SMS")
            return
        sender = f"{WHATSAPP}{number.removeprefix(WHATSAPP)}" if whatsapp else number
        for piece in split(numbered(reply.text, reply.options), BODY_LIMIT, to_plain):
            await self.api.send(sender, recipient_id, piece)
