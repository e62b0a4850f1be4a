"""A socket.io client as the chat widget is one, for the edge tests (python-socketio's client,
over long-polling: python-engineio's websocket client needs a newer aiohttp than Rasa 3.6's)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.security.edge import PROXY_HEADER, new_client_address
from tests.servers import Servers

WAIT_SECONDS = 120  # a bound on waiting for an answer, not a speed requirement


class Shopper:
    def __init__(self, servers: Servers, address: str | None = None) -> None:
        self.url = servers.rasa_url
        self.address = address or new_client_address()
        self.client = socketio.AsyncClient(reconnection=False)
        self.replies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.confirms: asyncio.Queue[Any] = asyncio.Queue()
        self.client.on("bot_uttered", self._reply)
        self.client.on("session_confirm", self.confirms.put_nowait)

    def _reply(self, payload: dict[str, Any]) -> None:
        self.replies.append(payload)
        self.arrived.set()

    async def connect(self) -> None:
        await self.client.connect(
            self.url, headers={PROXY_HEADER: self.address}, transports=["polling"]
        )

    async def session(self, request: dict[str, Any]) -> Any:
        """Send ``session_request``; the server's ``session_confirm``."""
        await self.client.emit("session_request", request)
        return await asyncio.wait_for(self.confirms.get(), WAIT_SECONDS)

    async def send(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Send a ``user_uttered``; what arrived until the server acknowledged it (every reply
        to it is sent before the acknowledgement)."""
        before = len(self.replies)
        await self.client.call("user_uttered", data, timeout=WAIT_SECONDS)
        return self.replies[before:]

    async def say(self, text: str, metadata: dict[str, Any] | None = None) -> list[str]:
        data: dict[str, Any] = {"message": text}
        if metadata is not None:
            data["metadata"] = metadata
        return [reply.get("text", "") for reply in await self.send(data)]

    async def close(self) -> None:
        await self.client.disconnect()

    async def next_reply(self, after: int) -> dict[str, Any]:
        """The first reply past the first ``after`` ones, once it has arrived."""
        while len(self.replies) <= after:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), WAIT_SECONDS)
        return self.replies[after]
