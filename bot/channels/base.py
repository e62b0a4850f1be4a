"""What every messaging channel does the same way, whatever the platform.

A platform's webhook request is authenticated first (401/403 and nothing else happens when
it fails), acknowledged at once, and its messages processed in the background, each platform
message id once across every Rasa instance (the wallet store's ``channel_deliveries``). A
platform user is a signed-out shopper unless they linked their store account; then each
message carries a short-lived customer token, which the actions verify as for the web chat.

Rasa 3.6.21 calls ``get_output_channel()`` with no request when the agent console appends bot
events (``POST /conversations/<id>/tracker/events?output_channel=latest``): the output channel
therefore finds the platform recipient from the sender id alone (and the stored reference).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels import linking
from bot.channels.http import PlatformError
from bot.channels.render import Reply, pick_option, reply_from_rasa
from bot.settings import ChannelSettings, get_channel_settings, get_settings
from bot.tokens import mint_customer_token
from bot.wallet.db import make_engine
from bot.wallet.repository.channels import ChannelsRepository

logger = logging.getLogger(__name__)

# A linked platform user's token lives just long enough for the turn it comes with.
TURN_TOKEN_LIFETIME = timedelta(minutes=5)
MAX_TEXT_CHARS = 5_000  # like the web chat's cap at the edge
MAX_BODY_BYTES = 256 * 1024  # platforms' webhook payloads are a few kilobytes
# Platform ids are kept a week (Slack and Meta retry for hours), pruned now and then.
KEEP_IDS = timedelta(days=7)
PRUNE_CHANCE = 0.002

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


@dataclass(frozen=True)
class Inbound:
    """One shopper message taken from a platform request."""

    message_id: str
    """The platform's id of this message: a redelivery carries the same one."""
    sender_id: str
    """The platform's id of the shopper (the conversation id is ``<platform>:<sender_id>``)."""
    text: str
    reference: dict[str, Any] | None = None
    """How to reach the sender later, when the sender id alone does not say it."""
    is_payload: bool = False
    """The text is a picked button's payload already (not to be mapped as "2")."""
    on_taken: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)
    """Anything the platform wants after the message is taken in (Telegram's callback answer)."""


def constant_time_equal(given: str | bytes | None, expected: str | bytes) -> bool:
    """Compare a secret the request carries with the expected one in constant time."""
    if given is None:
        return False
    given_bytes = given.encode() if isinstance(given, str) else given
    expected_bytes = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given_bytes, expected_bytes)


_COMMAND_NOISE = re.compile(r"[^a-z/ ]")
LINK_COMMANDS = frozenset({"link my account", "link account", "/link"})
UNLINK_COMMANDS = frozenset({"unlink my account", "unlink account", "/unlink"})


def _command(text: str) -> str:
    return " ".join(_COMMAND_NOISE.sub("", text.lower()).split())


class PlatformChannel(InputChannel):
    """A platform's input channel: subclasses say how to authenticate, parse and send."""

    platform: ClassVar[str]
    """Rasa's channel name: the route is /webhooks/<platform>/webhook."""

    def __init__(self, store: ChannelsRepository, channel_settings: ChannelSettings) -> None:
        self.store = store
        self.channel_settings = channel_settings
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def name(cls) -> str:
        return cls.platform

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Settings come from bot.settings (environment), never from credentials.yml."""
        return cls.from_settings(get_channel_settings(), default_store())

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: ChannelSettings, store: ChannelsRepository) -> PlatformChannel:
        """The channel, or SystemExit naming the missing settings."""

    # ------------------------------------------------------------- what a platform says

    @abstractmethod
    async def authenticate(self, request: Request) -> HTTPResponse | None:
        """None when the request comes from the platform; else the 401/403 to answer."""

    @abstractmethod
    def parse(self, request: Request) -> tuple[HTTPResponse, list[Inbound]]:
        """The immediate answer to the platform and the messages to process afterwards."""

    @abstractmethod
    async def deliver(self, recipient_id: str, reply: Reply) -> None:
        """Send one reply to a platform user, in the platform's form and length limits."""

    def handshake(self, request: Request) -> HTTPResponse:
        """GET on the webhook: a health check, or the platform's verification handshake."""
        return response.json({"status": "ok"})

    # ------------------------------------------------------------------------ the routes

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        hook = Blueprint(
            f"giftbot_{self.platform}_webhook", url_prefix=f"/webhooks/{self.platform}"
        )

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["GET"])
        async def handshake(request: Request) -> HTTPResponse:
            return self.handshake(request)

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if len(request.body or b"") > MAX_BODY_BYTES:  # before hashing it
                return response.json({"error": "payload too large"}, status=413)
            refusal = await self.authenticate(request)
            if refusal is not None:
                logger.warning("%s: refused an unauthenticated webhook request", self.platform)
                return refusal
            try:
                answer, messages = self.parse(request)
            except (ValueError, KeyError, TypeError, AttributeError):
                logger.warning("%s: a signed request this channel cannot read", self.platform)
                return response.json({"error": "unreadable payload"}, status=400)
            for message in messages:
                self._spawn(self._process(message, on_new_message))
            return answer

        return hook

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def _process(self, message: Inbound, on_new_message: OnNewMessage) -> None:
        try:
            if not await asyncio.to_thread(
                self.store.take_in_delivery, self.platform, message.message_id
            ):
                logger.info("%s: a redelivered message, already processed", self.platform)
                return
            if random.random() < PRUNE_CHANCE:  # noqa: S311 - not a secret
                await asyncio.to_thread(
                    self.store.forget_deliveries_before, datetime.now(timezone.utc) - KEEP_IDS
                )
            if message.on_taken is not None:
                try:
                    await message.on_taken()
                except PlatformError as exc:  # the message is still the shopper's to answer
                    logger.warning("%s: %s", self.platform, exc)
            if message.reference is not None:
                await asyncio.to_thread(
                    self.store.save_reference, self.platform, message.sender_id, message.reference
                )
            await self._converse(message, on_new_message)
        except Exception as exc:  # the platform was answered already: log and go on
            # The exception's type only: its message or traceback may quote what was said.
            logger.error("%s: processing a message failed (%s)", self.platform, type(exc).__name__)

    async def _converse(self, message: Inbound, on_new_message: OnNewMessage) -> None:
        text = message.text[:MAX_TEXT_CHARS]
        command = _command(text)
        if command in LINK_COMMANDS:
            await self.deliver(message.sender_id, await self._link_reply(message.sender_id))
            return
        if command in UNLINK_COMMANDS:
            unlinked = await asyncio.to_thread(
                self.store.unlink,
                self.platform,
                message.sender_id,
                self.conversation_id(message.sender_id),
            )
            await self.deliver(message.sender_id, Reply(linking.unlinked_text(unlinked)))
            return
        offered = await asyncio.to_thread(
            self.store.offered_options, self.platform, message.sender_id
        )
        if offered:  # options answer the next message only
            await asyncio.to_thread(self.store.offer_options, self.platform, message.sender_id, [])
            if not message.is_payload:
                text = pick_option(text, offered) or text
        metadata: dict[str, Any] = {}
        customer_id = await asyncio.to_thread(
            self.store.linked_customer, self.platform, message.sender_id
        )
        if customer_id is not None:
            metadata["customer_token"] = mint_customer_token(
                customer_id, get_settings().token_secret, TURN_TOKEN_LIFETIME
            )
        await on_new_message(
            UserMessage(
                text,
                self.get_output_channel(),
                self.conversation_id(message.sender_id),
                input_channel=self.platform,
                metadata=metadata,
            )
        )

    async def _link_reply(self, sender_id: str) -> Reply:
        minutes = self.channel_settings.account_link_minutes
        link_id, expires_at = await asyncio.to_thread(
            self.store.create_link, self.platform, sender_id, timedelta(minutes=minutes)
        )
        token = linking.mint_link_token(link_id, expires_at, get_settings().token_secret)
        url = f"{self.channel_settings.account_link_url}?token={token}"
        return Reply(linking.link_text(url, minutes))

    def conversation_id(self, sender_id: str) -> str:
        """Rasa's conversation id: prefixed, so that two platforms' user ids never collide."""
        return f"{self.platform}:{sender_id}"

    def sender_of(self, conversation_id: str) -> str | None:
        prefix = f"{self.platform}:"
        return conversation_id[len(prefix) :] if conversation_id.startswith(prefix) else None

    async def reference(self, sender_id: str) -> dict[str, Any]:
        """What the platform needs to reach ``sender_id`` (saved when they last wrote)."""
        found = await asyncio.to_thread(self.store.reference, self.platform, sender_id)
        return found or {}

    def get_output_channel(self) -> OutputChannel:
        return PlatformOutput(self)

    async def send(self, recipient_id: str, reply: Reply) -> None:
        """Deliver ``reply`` and remember its options, so that the answer "2" can be mapped."""
        if reply.options:
            await asyncio.to_thread(
                self.store.offer_options,
                self.platform,
                recipient_id,
                [option.as_dict() for option in reply.options],
            )
        await self.deliver(recipient_id, reply)


class PlatformOutput(OutputChannel):
    """Everything Rasa sends to a platform user goes through its channel's ``send``."""

    def __init__(self, channel: PlatformChannel) -> None:
        self.channel = channel

    def name(self) -> str:
        return self.channel.platform

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._send(recipient_id, reply_from_rasa(message))

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._send(recipient_id, Reply(text))

    async def _send(self, conversation_id: str, reply: Reply | None) -> None:
        sender_id = self.channel.sender_of(conversation_id)
        if sender_id is None:
            logger.warning("%s: not one of this channel's conversations", self.name())
        elif reply is not None:
            await self.channel.send(sender_id, reply)


def default_store() -> ChannelsRepository:
    """The channels' repository on the wallet store of this installation."""
    settings = get_settings()
    return ChannelsRepository(
        make_engine(settings.db_url), settings.claim_code_secret, settings.sealing_key
    )
