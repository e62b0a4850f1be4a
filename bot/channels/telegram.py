"""Telegram: the Bot API adapter and the channel (``/webhooks/telegram/webhook``).

Unlike Rasa 3.6.21's TelegramInput, nothing calls Telegram at start-up (its ``setWebhook`` and
``getMe`` in the constructor stop Rasa from starting offline): ``giftbot channels register``
sets the webhook, with the secret token Telegram then sends in every update's
``X-Telegram-Bot-Api-Secret-Token`` header, which this channel requires.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.base import Inbound, PlatformChannel, constant_time_equal
from bot.channels.http import call
from bot.channels.render import Option, Reply, split, to_telegram_html
from bot.settings import ChannelSettings, TelegramSettings
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096  # characters of a sendMessage text, after entity parsing
CALLBACK_DATA_LIMIT = 64  # bytes of an inline button's callback_data
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
UPDATES = ["message", "callback_query"]


class TelegramApi:
    """The few Bot API methods the assistant uses (https://core.telegram.org/bots/api)."""

    def __init__(self, settings: TelegramSettings) -> None:
        self._base = f"{settings.api_url}/bot{settings.bot_token}"

    async def _method(self, name: str, payload: dict[str, Any]) -> Any:
        return await call("POST", f"{self._base}/{name}", what=f"Telegram {name}", json=payload)

    async def send_message(
        self, chat_id: str, html_text: str, keyboard: list[list[dict[str, str]]] | None = None
    ) -> None:
        payload: dict[str, Any] = {"chat_id": chat_id, "text": html_text, "parse_mode": "HTML"}
        if keyboard:
            payload["reply_markup"] = {"inline_keyboard": keyboard}
        await self._method("sendMessage", payload)

    async def answer_callback_query(self, callback_query_id: str) -> None:
        await self._method("answerCallbackQuery", {"callback_query_id": callback_query_id})

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self._method(
            "setWebhook", {"url": url, "secret_token": secret_token, "allowed_updates": UPDATES}
        )


class TelegramChannel(PlatformChannel):
    platform = "telegram"

    def __init__(
        self, settings: TelegramSettings, store: ChannelsRepository, channels: ChannelSettings
    ) -> None:
        super().__init__(store, channels)
        self.settings = settings
        self.api = TelegramApi(settings)

    @classmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        if settings.telegram is None:
            raise SystemExit("the telegram channel needs its GIFTBOT_TELEGRAM_... settings")
        return cls(settings.telegram, store, settings)

    async def authenticate(self, request: Request) -> HTTPResponse | None:
        if constant_time_equal(request.headers.get(SECRET_HEADER), self.settings.secret_token):
            return None
        return response.json({"error": "unauthorized"}, status=401)

    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        update = request.json
        update_id = str(update["update_id"])
        message = update.get("message")
        query = update.get("callback_query")
        inbound: list[Inbound] = []
        if isinstance(message, dict) and isinstance(message.get("text"), str):
            inbound.append(Inbound(update_id, str(message["chat"]["id"]), message["text"]))
        elif isinstance(query, dict) and isinstance(query.get("data"), str):
            chat_id = str(query["message"]["chat"]["id"])
            query_id = str(query["id"])

            async def answer_query() -> None:  # stops the button's spinner
                await self.api.answer_callback_query(query_id)

            # A long payload's button carries "#N" (see _button), mapped back like a typed "N".
            inbound.append(Inbound(update_id, chat_id, query["data"], on_taken=answer_query))
        return response.json({}), inbound

    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        pieces = split(reply.text, MESSAGE_LIMIT, to_telegram_html) or [""]
        keyboard = [[_button(number, option)] for number, option in enumerate(reply.options, 1)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if piece or (last and keyboard):
                await self.api.send_message(
                    recipient_id, piece or "Choose one:", keyboard if last else None
                )


def _button(number: int, option: Option) -> dict[str, str]:
    data = option.payload
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        data = f"#{number}"
    return {"text": option.title, "callback_data": data}
