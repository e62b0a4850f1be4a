"""The load generator: shoppers over REST or socket.io, driven in a closed or an open loop.

- **Closed loop**: N shoppers at once, each sending its next message as soon as the last one is
  answered (zero think time): what the server can do flat out.
- **Open loop**: the shoppers' messages are scheduled at a fixed total rate, whatever the
  answers' speed (a shopper whose answer is late sends right after it, and that is counted):
  the latency shoppers see at a given traffic.

One aiohttp session with keep-alive serves every REST shopper; each socket.io conversation is
a websocket of its own, as each browser's would be. A turn over socket.io ends when the server
acknowledges the message: python-socketio sends the acknowledgement when the channel's handler
has returned, after every ``bot_uttered`` of that turn was emitted.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from scripts.bench.journeys import Turn

TURN_TIMEOUT_SECONDS = 120.0
"""A turn not answered in this time is counted as unanswered (and the conversation goes on)."""

Say = Callable[[str], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Sample:
    """One turn of one conversation."""

    shopper: int
    turn: int
    """1-based position in the conversation."""
    started: float
    """Seconds since the run began."""
    latency: float
    replies: int
    """Messages the bot sent back (0: it chose to say nothing, as a plain bot may)."""
    as_scripted: bool
    late: bool = False
    """Open loop: sent after its scheduled time because the previous answer was late."""
    error: str | None = None


@dataclass
class Run:
    """What one loop measured."""

    name: str
    transport: str
    shoppers: int
    turns: int
    offered_rate: float | None
    samples: list[Sample] = field(default_factory=list)
    duration: float = 0.0


class Transport:
    """Opens conversations with one server over one protocol."""

    name = ""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def conversation(self, sender: str) -> Any:
        raise NotImplementedError


class Rest(Transport):
    """POST /webhooks/rest/webhook with ``{"sender", "message"}``, on keep-alive connections."""

    name = "REST"

    def __init__(self, url: str) -> None:
        self.url = f"{url.rstrip('/')}/webhooks/rest/webhook"
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Rest:
        # No cookies: behind HAProxy each request is balanced on its own.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_SECONDS),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    @asynccontextmanager
    async def conversation(self, sender: str) -> AsyncIterator[Say]:
        session = self.session
        assert session is not None, "use the transport in `async with`"

        async def say(message: str) -> list[dict[str, Any]]:
            body = {"sender": sender, "message": message}
            async with session.post(self.url, json=body) as response:
                response.raise_for_status()
                replies = await response.json()
            return list(replies)

        yield say


class SocketIO(Transport):
    """Rasa's socket.io protocol over a websocket, as the widget speaks it:
    ``session_request {"session_id"}``, then each ``user_uttered`` acknowledged by the server once
    the turn is processed; the replies are the ``bot_uttered`` events before the acknowledgement.

    Engine.IO 4 / Socket.IO 5 framing is written out here (a few packet types) because
    python-engineio 4.15's websocket client needs aiohttp 3.10, and Rasa 3.6 pins aiohttp 3.9.
    """

    name = "socket.io"

    def __init__(self, url: str) -> None:
        self.url = (
            url.replace("http", "ws", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        )
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SocketIO:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    @asynccontextmanager
    async def conversation(self, sender: str) -> AsyncIterator[Say]:
        assert self.session is not None, "use the transport in `async with`"
        socket = _Socket(await self.session.ws_connect(self.url, timeout=TURN_TIMEOUT_SECONDS))
        reading = asyncio.create_task(socket.read())
        try:
            await asyncio.wait_for(socket.connected.wait(), TURN_TIMEOUT_SECONDS)
            await socket.emit("session_request", {"session_id": sender})
            await asyncio.wait_for(socket.confirmed.wait(), TURN_TIMEOUT_SECONDS)

            async def say(message: str) -> list[dict[str, Any]]:
                socket.replies.clear()
                await socket.call("user_uttered", {"message": message, "session_id": sender})
                return list(socket.replies)

            yield say
        finally:
            reading.cancel()
            await socket.ws.close()


class _Socket:
    """One socket.io connection: events in, events and acknowledged calls out."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.replies: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self.confirmed = asyncio.Event()
        self.acks: dict[int, asyncio.Event] = {}
        self.next_id = 0

    async def emit(self, event: str, data: Any, ack_id: str = "") -> None:
        await self.ws.send_str(f"42{ack_id}{json.dumps([event, data])}")

    async def call(self, event: str, data: Any) -> None:
        """Emit and wait for the server's acknowledgement (its handler has returned)."""
        self.next_id += 1
        ack = self.acks[self.next_id] = asyncio.Event()
        await self.emit(event, data, str(self.next_id))
        await asyncio.wait_for(ack.wait(), TURN_TIMEOUT_SECONDS)
        del self.acks[self.next_id]

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            packet: str = message.data
            if packet == "2":  # Engine.IO ping
                await self.ws.send_str("3")
            elif packet.startswith("0"):  # Engine.IO open: join the default namespace
                await self.ws.send_str("40")
            elif packet.startswith("40"):
                self.connected.set()
            elif packet.startswith("42"):
                event, *args = json.loads(packet[2:])
                if event == "bot_uttered" and args:
                    self.replies.append(args[0])
                elif event == "session_confirm":
                    self.confirmed.set()
            elif packet.startswith("43"):
                number = packet[2:].split("[", 1)[0]
                if number.isdigit() and int(number) in self.acks:
                    self.acks[int(number)].set()


def reply_text(replies: Sequence[dict[str, Any]]) -> str:
    """Everything the shopper reads of a turn's replies, lower-cased (texts and buttons)."""
    parts: list[str] = []
    for reply in replies:
        parts.append(str(reply.get("text") or ""))
        for button in reply.get("buttons") or reply.get("quick_replies") or []:
            parts.append(str(button.get("title") or ""))
    return "\n".join(parts).lower()


async def _turn(
    say: Say, shopper: int, number: int, turn: Turn, begun: float, late: bool = False
) -> Sample:
    started = time.perf_counter()
    try:
        replies = await say(turn.message)
    except Exception as exc:  # counted, reported by type: the run goes on
        return Sample(
            shopper,
            number,
            started - begun,
            time.perf_counter() - started,
            0,
            False,
            late,
            type(exc).__name__,
        )
    latency = time.perf_counter() - started
    answered = any(reply.get("text") or reply.get("buttons") for reply in replies)
    scripted = answered and turn.expect in reply_text(replies)
    return Sample(shopper, number, started - begun, latency, len(replies), scripted, late)


def new_sender(label: str) -> str:
    """A conversation id no other run uses (and that the socket.io channel takes as a secret)."""
    return f"bench-{label}-{uuid.uuid4().hex}"


async def closed_loop(
    transport: Transport,
    script: Sequence[Turn],
    shoppers: int,
    conversations: int = 1,
    name: str = "",
) -> Run:
    """``shoppers`` at once, each holding ``conversations`` conversations one after the other,
    with zero think time."""
    run = Run(name, transport.name, shoppers, len(script), None)
    begun = time.perf_counter()

    async def shopper(number: int) -> None:
        for _ in range(conversations):
            async with transport.conversation(new_sender(f"c{number}")) as say:
                for position, turn in enumerate(script, start=1):
                    run.samples.append(await _turn(say, number, position, turn, begun))

    await asyncio.gather(*(shopper(number) for number in range(shoppers)))
    run.duration = _busy_time(run.samples)
    return run


async def open_loop(
    transport: Transport,
    script: Sequence[Turn],
    shoppers: int,
    rate: float,
    name: str = "",
) -> Run:
    """``shoppers`` conversations whose messages are scheduled at ``rate`` messages a second in
    all: each shopper sends every ``shoppers / rate`` seconds, their starts spread evenly."""
    run = Run(name, transport.name, shoppers, len(script), rate)
    interval = shoppers / rate
    begun = time.perf_counter()

    async def shopper(number: int) -> None:
        start = begun + number / rate
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        async with transport.conversation(new_sender(f"o{number}")) as say:
            for position, turn in enumerate(script, start=1):
                due = start + (position - 1) * interval
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                late = wait < -0.05
                run.samples.append(await _turn(say, number, position, turn, begun, late))

    await asyncio.gather(*(shopper(number) for number in range(shoppers)))
    run.duration = _busy_time(run.samples)
    return run


def _busy_time(samples: Sequence[Sample]) -> float:
    """From the first message sent to the last answer received."""
    if not samples:
        return 0.0
    first = min(s.started for s in samples)
    return max(s.started + s.latency for s in samples) - first
