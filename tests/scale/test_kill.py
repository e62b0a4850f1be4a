"""``kill -9`` of the Rasa server holding a shopper's socket, between two turns: the client
reconnects through the balancer to the other server, the next turn uses the slots of the
earlier ones, and nothing the shopper said is lost.

(Named to run after the other scale tests: it leaves one Rasa server dead until a test that
needs both starts it again.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
import socketio

from bot.channels.socketio import session_sender
from bot.settings import get_edge_settings
from bot.wallet.demo import CARDS
from tests.scale.conftest import Scaled
from tests.scale.events import duplicates, stored_events

pytestmark = pytest.mark.servers
ACTIVE = CARDS[0]


def test_the_shopper_carries_on_after_the_server_holding_its_socket_is_killed(
    scaled: Scaled,
) -> None:
    topology = scaled.topology
    secret = f"scale-kill-{time.time_ns()}"
    sender = session_sender(secret, get_edge_settings().socket_session_key)
    figures: dict[str, Any] = {}

    async def test() -> list[str]:
        jar = aiohttp.CookieJar(unsafe=True)
        session = aiohttp.ClientSession(cookie_jar=jar)
        # As the widget: reconnect on its own, and ask for its session again on every connect.
        client = socketio.AsyncClient(
            http_session=session, reconnection=True, reconnection_delay=0.5
        )
        received: asyncio.Queue[Any] = asyncio.Queue()
        confirmed = asyncio.Event()
        connects = 0

        @client.event
        async def connect() -> None:
            nonlocal connects
            connects += 1
            await client.emit("session_request", {"session_secret": secret})

        client.on("session_confirm", lambda _: confirmed.set())
        client.on("bot_uttered", received.put_nowait)

        async def say(text: str) -> str:
            await client.emit("user_uttered", {"message": text})
            texts = [str((await asyncio.wait_for(received.get(), 60)).get("text"))]
            while True:  # the rest of this turn's replies, if any
                try:
                    texts.append(str((await asyncio.wait_for(received.get(), 2)).get("text")))
                except asyncio.TimeoutError:
                    return "\n".join(texts)

        replies = []
        try:
            # Long-polling through the balancer, the case that needs the sticky cookie (this
            # client cannot use WebSocket with the aiohttp Rasa 3.6 pins).
            await client.connect(
                topology.rasa_url, transports=["polling"], socketio_path="socket.io"
            )
            await asyncio.wait_for(confirmed.wait(), 30)
            replies.append(
                await say("how much money is on my gift card? I don't want to redeem it yet")
            )
            holder = next(c.value for c in jar if c.key == "GIFTBOT_RASA")  # e.g. "rasa2"
            number = int(holder.removeprefix("rasa"))
            confirmed.clear()
            killed_at = time.monotonic()
            topology.kill(f"rasa-{number}")
            figures["killed"] = f"rasa-{number}"
            await asyncio.wait_for(confirmed.wait(), 60)  # reconnected, session asked again
            figures["reconnect_seconds"] = time.monotonic() - killed_at
            replies.append(await say(ACTIVE.serial))
            replies.append(await say(ACTIVE.order_number))
            figures["connects"] = connects
        finally:
            await client.disconnect()
            await session.close()
        return replies

    replies = asyncio.run(test())
    print(
        f"[scale figures] kill -9 of {figures['killed']}: the widget reconnected through the "
        f"balancer in {figures['reconnect_seconds']:.1f} s"
    )
    assert figures["connects"] == 2
    assert "serial number" in replies[0]
    assert "order number" in replies[1]  # the form, and its slots, survived the server
    assert "$50.00" in replies[2]
    events = stored_events(scaled.tracker_direct_url, sender)
    said = [e["text"] for e in events if e["event"] == "user"]
    assert said[-3:] == [
        "how much money is on my gift card? I don't want to redeem it yet",
        ACTIVE.serial,
        ACTIVE.order_number,
    ]
    assert duplicates(events) == 0
