"""Slack: the Web API adapter and the channel (``/webhooks/slack/webhook``).

Set the app's Events API Request URL and its Interactivity Request URL both to the webhook.
Every request is checked against Slack's v0 signature (HMAC-SHA256 of ``v0:<timestamp>:<raw
body>`` with the signing secret) and refused when its timestamp is over five minutes old.
Slack retries an event it has not seen acknowledged within 3 seconds: this channel answers at
once and processes each ``event_id`` once. Replies are mrkdwn section blocks, and buttons an
actions block; the Web API's base URL is a setting, unlike Rasa 3.6.21's SlackBot's client.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.base import Inbound, PlatformChannel, constant_time_equal
from bot.channels.http import PlatformError, call
from bot.channels.render import Reply, split, to_slack_mrkdwn
from bot.settings import ChannelSettings, SlackSettings
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

SECTION_LIMIT = 3000  # characters of a section block's text
BUTTON_TITLE_LIMIT = 75
MAX_AGE_SECONDS = 5 * 60
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


class SlackApi:
    """chat.postMessage (https://api.slack.com/methods/chat.postMessage)."""

    def __init__(self, settings: SlackSettings) -> None:
        self._base = settings.api_url
        self._headers = {"Authorization": f"Bearer {settings.bot_token}"}

    async def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> None:
        answer = await call(
            "POST",
            f"{self._base}/chat.postMessage",
            what="Slack chat.postMessage",
            json={"channel": channel, "text": text, "blocks": blocks},
            headers=self._headers,
        )
        # The Web API answers HTTP 200 with {"ok": false, "error": ...} when it refuses.
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else "no JSON"
            raise PlatformError(f"Slack chat.postMessage: {error}")


class SlackChannel(PlatformChannel):
    platform = "slack"

    def __init__(
        self, settings: SlackSettings, store: ChannelsRepository, channels: ChannelSettings
    ) -> None:
        super().__init__(store, channels)
        self.settings = settings
        self.api = SlackApi(settings)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        if settings.slack is None:
            raise SystemExit("the slack channel needs its GIFTBOT_SLACK_... settings")
        return cls(settings.slack, store, settings)

    async def authenticate(self, request: Request) -> HTTPResponse | None:
        timestamp = request.headers.get("X-Slack-Request-Timestamp") or ""
        given = request.headers.get("X-Slack-Signature")
        refused = response.json({"error": "unauthorized"}, status=401)
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
            return refused  # stale: possibly a replay of a request someone recorded
        expected = signature(self.settings.signing_secret, timestamp, request.body)
        return None if constant_time_equal(given, expected) else refused

    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        if request.content_type.startswith("application/x-www-form-urlencoded"):
            return response.empty(status=200), self._interaction(
                json.loads(request.form["payload"][0])
            )
        body = request.json
        if body.get("type") == "url_verification":
            return response.json({"challenge": body["challenge"]}), []
        event = body.get("event") or {}
        # Direct messages, and mentions elsewhere (a channel message that mentions the app
        # also comes as an app_mention: taking only those answers it once).
        kind = event.get("type")
        ours = body.get("type") == "event_callback" and (
            kind == "app_mention" or (kind == "message" and event.get("channel_type") == "im")
        )
        # Not the bot's own messages, nor edits and other subtypes.
        if not ours or event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return response.empty(status=200), []
        text = _MENTION.sub("", str(event.get("text") or ""))
        return response.empty(status=200), [
            Inbound(
                f"event:{body['event_id']}",
                str(event["user"]),
                text,
                reference={"channel": str(event["channel"])},
            )
        ]

    def _interaction(self, payload: dict[str, Any]) -> list[Inbound]:
        """A button in one of the assistant's messages was clicked (block_actions)."""
        if payload.get("type") != "block_actions" or not payload.get("actions"):
            return []
        action = payload["actions"][0]
        return [
            Inbound(
                f"action:{payload['trigger_id']}",
                str(payload["user"]["id"]),
                str(action.get("value") or ""),
                reference={"channel": str(payload["channel"]["id"])},
                is_payload=True,
            )
        ]

    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        reference = await self.reference(recipient_id)
        channel = reference.get("channel") or recipient_id  # a user id opens the app's DM
        pieces = split(reply.text, SECTION_LIMIT, to_slack_mrkdwn) or [""]
        for index, piece in enumerate(pieces):
            blocks: list[dict[str, Any]] = []
            if piece:
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
            if index == len(pieces) - 1 and reply.options:
                blocks.append(
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": f"option_{number}",
                                "text": {
                                    "type": "plain_text",
                                    "text": option.title[:BUTTON_TITLE_LIMIT],
                                },
                                "value": option.payload,
                            }
                            for number, option in enumerate(reply.options, 1)
                        ],
                    }
                )
            if blocks:
                await self.api.post_message(channel, piece or "Choose one:", blocks)
