"""The REST channel: Rasa's ``POST /webhooks/rest/webhook`` contract, without its leaks.

Same route, same body (``{"sender", "message", "metadata"}``) and the same answer (the list of
the assistant's replies) as ``rasa.core.channels.rest.RestInput`` in Rasa 3.6.21, which this
replaces (credentials.yml: ``bot.channels.rest.RestInput``) because that one:

- logs the whole message at ERROR when the client disconnects mid-turn
  (``rest.message.received.timeout``) or the turn fails (``rest.message.received.failure``,
  with every frame's variables, metadata and customer token included);
- passes anything as the message (a number, a list, a megabyte of text) into NLU, whose memory
  grows with the square of the words;
- puts every call without ``sender`` into one shared conversation, ``default``;
- lets the caller name another channel (``input_channel``), which decides where the console's
  later messages are sent.

Here the body is checked before anything else: a malformed one gets 400 with a JSON
``{"error": ...}``; a body too big to be a message 413; a message over
``GIFTBOT_MAX_MESSAGE_CHARS`` the assistant's "please keep it shorter" as the only reply, with
no NLU run and nothing written to the tracker; a client over ``GIFTBOT_RATE_LIMIT_MESSAGES`` a
generic 429. A call without ``sender`` starts a new conversation of its own: its id is the
``recipient_id`` of every reply (and the ``X-Giftbot-Sender`` header); send it as ``sender`` to
continue. ``?stream=true`` is not supported: the replies always come as one list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa.core.channels import rest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import log_redaction
from bot.channels.edge import MAX_METADATA_BYTES, MAX_SENDER_CHARS, TOO_LONG, edge_limiter
from bot.ratelimit import RATE_LIMITED, Limit, client_address
from bot.settings import get_edge_settings

logger = logging.getLogger(__name__)

SENDER_HEADER = "X-Giftbot-Sender"


class BadBody(ValueError):
    """The body is not a message; the text says what is wrong, for the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RestMessage:
    sender: str
    text: str
    metadata: dict[str, Any] | None
    too_long: bool


def max_body_bytes(max_chars: int) -> int:
    """A body bigger than this cannot be a message we read (JSON escapes take 6 bytes a char)."""
    return max_chars * 6 + MAX_METADATA_BYTES


def read_body(body: bytes, max_chars: int) -> RestMessage:
    """The message in a request body, or BadBody saying what is wrong with it."""
    if len(body) > max_body_bytes(max_chars):
        raise BadBody(TOO_LONG.format(limit=max_chars), status=413)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadBody(
            'The body must be a JSON object: {"sender": "...", "message": "...", "metadata": {}}.'
        )
    sender, text, metadata = data.get("sender"), data.get("message"), data.get("metadata")
    if sender is not None and not isinstance(sender, str):
        raise BadBody("'sender' must be a string.")
    if isinstance(sender, str) and len(sender) > MAX_SENDER_CHARS:
        raise BadBody(f"'sender' can have at most {MAX_SENDER_CHARS} characters.")
    if not isinstance(text, str):
        raise BadBody("'message' must be a string.")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadBody("'metadata' must be a JSON object.")
    return RestMessage(
        # No sender: a conversation of its own, never one shared by every such caller.
        sender=sender or f"rest-{secrets.token_hex(16)}",
        text=text,
        metadata=metadata,
        too_long=len(text) > max_chars,
    )


def _error(message: str, status: int) -> HTTPResponse:
    return response.json({"error": message}, status=status)


def _log_failure(turn: asyncio.Future[Any]) -> None:
    """The outcome of a turn, also when the client has gone: by type and place, never content."""
    if turn.cancelled():
        logger.warning("rest: a turn was cancelled before it finished")
    elif turn.exception() is not None:
        exc = turn.exception()
        assert exc is not None
        logger.error(
            "rest: handling a message failed", exc_info=(type(exc), exc, exc.__traceback__)
        )


class RestInput(rest.RestInput):
    """Rasa's REST channel (same name, route and contract), checked and quiet."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        log_redaction.install()  # after Sanic has set up its log handlers
        edge = get_edge_settings()
        limiter = edge_limiter()
        messages = Limit("rest-messages", edge.rate_limit_messages)
        webhook = Blueprint("giftbot_rest", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            client = client_address(request.ip, request.headers, edge.trusted_proxy_header)
            if not await limiter.allow(messages, client):
                return response.json(
                    {"error": RATE_LIMITED}, status=429, headers={"Retry-After": "60"}
                )
            try:
                message = read_body(request.body, edge.max_message_chars)
            except BadBody as bad:
                return _error(str(bad), bad.status)
            headers = {SENDER_HEADER: message.sender}
            if message.too_long:
                reply = CollectingOutputChannel._message(
                    message.sender, text=TOO_LONG.format(limit=edge.max_message_chars)
                )
                return response.json([reply], headers=headers)
            collector = CollectingOutputChannel()
            turn = asyncio.ensure_future(
                on_new_message(
                    UserMessage(
                        message.text,
                        collector,
                        message.sender,
                        input_channel=self.name(),
                        metadata=message.metadata,
                    )
                )
            )
            turn.add_done_callback(_log_failure)
            try:
                # Shielded: a client that hangs up does not cut a turn (a redemption, a tracker
                # write) in half; the turn finishes and the client just misses the answer.
                await asyncio.shield(turn)
            except asyncio.CancelledError:
                logger.info("rest: the client left before the answer")
                raise
            except Exception:  # logged by _log_failure
                return _error("Something went wrong on our side. Please try again.", 500)
            return response.json(collector.messages, headers=headers)

        return webhook
