"""The socket.io channel: Rasa's (same name, events and replies), with the edge checks and a
conversation bound to its first client.

Rasa 3.6.21's ``SocketIOInput`` puts any socket that names a session id into that session's
room and lets it send messages as that session: whoever learns a shopper's session id gets
their replies and can drive their conversation. Here a session is a secret the client keeps
(the widget makes one and keeps it in the browser's storage): the conversation's id, Rasa's
sender id, is an HMAC of that secret under ``GIFTBOT_SOCKET_SESSION_KEY``, so knowing the id
alone opens nothing.

``session_request`` ``{"session_secret": S}`` joins conversation ``HMAC(S)`` and is confirmed
with ``{"session_id": HMAC(S), "session_secret": S}``. A client that sends only Rasa's
``{"session_id": X}`` (Rasa's own web chat) has X taken as its secret and is confirmed with X, so
it keeps its conversation across reloads as before, in a conversation whose real id it never
sees. Messages go to the conversation the socket's session request bound; the ``session_id``
in a message is ignored.

Also: a message over ``GIFTBOT_MAX_MESSAGE_CHARS`` gets the assistant's "please keep it
shorter" and nothing else happens; connects and messages are rate-limited per client address;
and with ``GIFTBOT_SOCKETIO_REDIS_URL`` set, rooms are shared between Rasa processes through
Redis (bot/rasa_ext/socketio_rooms.py), so a reply or an agent's message reaches the
shopper whichever process sends it. python-socketio stays at 5.9 (pyproject.toml): Rasa 3.6 and
this module call ``enter_room`` without awaiting it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from rasa.core.channels import socketio as rasa_socketio
from rasa.core.channels.channel import UserMessage, decode_bearer_token
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import log_redaction
from bot.channels.edge import SLOW_DOWN, TOO_LONG, edge_limiter
from bot.rasa_ext.socketio_rooms import LocalFallbackRedisManager
from bot.ratelimit import Limit, client_address
from bot.settings import get_edge_settings

logger = logging.getLogger(__name__)

UNREADABLE = "I couldn't read that message. Please type it again."
ROOMS_CHANNEL = "giftbot-socketio"
"""The Redis pub/sub channel through which the Rasa processes share socket.io rooms."""
_SECRET = re.compile(r"[A-Za-z0-9_\-]{16,128}")


def session_sender(secret: str, key: bytes) -> str:
    """The conversation (Rasa sender) id of a session secret."""
    return hmac.new(key, f"socketio-session:{secret}".encode(), hashlib.sha256).hexdigest()[:32]


def client_manager(redis_url: str | None) -> socketio.AsyncManager | None:
    """Rooms shared through Redis between processes (still reaching this process's own sockets
    while Redis is down), or None: this process's rooms only."""
    if not redis_url:
        return None
    return LocalFallbackRedisManager(redis_url, channel=ROOMS_CHANNEL)


class SocketIOInput(rasa_socketio.SocketIOInput):
    """Rasa's socket.io channel with sessions bound to a secret, size caps and rate limits."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        log_redaction.install()  # after Sanic has set up its log handlers
        edge = get_edge_settings()
        limiter = edge_limiter()
        connects = Limit("socketio-connects", edge.rate_limit_connects)
        messages = Limit("socketio-messages", edge.rate_limit_messages)
        namespace = self.namespace
        sio = socketio.AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=[],  # as Rasa: any origin (the widget is embedded anywhere)
            client_manager=client_manager(edge.socketio_redis_url),
        )
        webhook = rasa_socketio.SocketBlueprint(
            sio, self.socketio_path, "giftbot_socketio", __name__
        )
        self.sio = sio  # get_output_channel() (the console's messages) emits through it
        clients: dict[str, str] = {}  # socket id -> client address
        bound: dict[str, str] = {}  # socket id -> the conversation its session request bound

        async def tell(sid: str, text: str) -> None:
            """A reply from the channel itself, to this socket only (nothing reaches Rasa)."""
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=namespace)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
            # python-engineio's Sanic driver puts 127.0.0.1 in REMOTE_ADDR: ask Sanic instead.
            request = environ.get("sanic.request")
            peer = request.ip if request is not None else None
            headers = request.headers if request is not None else {}
            client = client_address(peer, headers, edge.trusted_proxy_header)
            if not await limiter.allow(connects, client):
                return False
            if self.jwt_key:  # Rasa's optional check of a bearer token, kept as it was
                token = auth.get("token") if isinstance(auth, dict) else None
                if not token or not decode_bearer_token(token, self.jwt_key, self.jwt_algorithm):
                    return False
            clients[sid] = client
            return True

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str) -> None:
            clients.pop(sid, None)
            bound.pop(sid, None)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            data = data if isinstance(data, dict) else {}
            secret, legacy_id = data.get("session_secret"), data.get("session_id")
            if isinstance(secret, str) and _SECRET.fullmatch(secret):
                confirm_id = None
            elif isinstance(legacy_id, str) and _SECRET.fullmatch(legacy_id):
                secret, confirm_id = legacy_id, legacy_id
            else:
                secret, confirm_id = secrets.token_hex(16), None
            sender = session_sender(secret, edge.socket_session_key)
            previous = bound.get(sid)
            if previous and previous != sender:
                sio.leave_room(sid, previous, namespace=namespace)
            sio.enter_room(sid, sender, namespace=namespace)
            bound[sid] = sender
            confirmed: Any = confirm_id or {"session_id": sender, "session_secret": secret}
            await sio.emit("session_confirm", confirmed, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            sender = bound.get(sid)
            if sender is None:
                logger.warning("socketio: a message before any session request was ignored")
                return
            if not await limiter.allow(messages, clients.get(sid, "unknown")):
                await tell(sid, SLOW_DOWN)
                return
            data = data if isinstance(data, dict) else {}
            text, metadata = data.get("message"), data.get(self.metadata_key)
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = []  # refused below
            if not isinstance(text, str) or not isinstance(metadata, dict | None):
                await tell(sid, UNREADABLE)
                return
            if len(text) > edge.max_message_chars:
                await tell(sid, TOO_LONG.format(limit=edge.max_message_chars))
                return
            output = rasa_socketio.SocketIOOutput(sio, self.bot_message_evt)
            try:
                await on_new_message(
                    UserMessage(text, output, sender, input_channel=self.name(), metadata=metadata)
                )
            except Exception:  # logged by type and place only (bot/log_redaction.py)
                logger.exception("socketio: handling a message failed")

        return webhook
