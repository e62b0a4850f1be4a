"""``kill -9`` of the Rasa server holding a shopper's socket, between two turns and during a
slow action: the client reconnects through the balancer to the other server, the next turn uses
the slots of the earlier ones, and nothing the shopper said is lost (a message whose turn the
kill cut short is answered from the inbox, bot/rasa_ext/inbox.py).

(Named to run after the other scale tests: each test leaves one Rasa server dead; a test that
needs both starts it again.)"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import socketio
import sqlalchemy as sa

from bot.channels.socketio import session_sender
from bot.rasa_ext import inbox
from bot.settings import get_edge_settings
from bot.wallet import codes
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
    figures: dict[str, Any] = {"rest_before": [], "rest_after": []}

    async def test() -> list[str]:
        jar = aiohttp.CookieJar(unsafe=True)
        session = aiohttp.ClientSession(cookie_jar=jar)
        rest = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())  # not sticky
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

        async def rest_turn(sender: str) -> tuple[int, str | None]:
            """A REST shopper's "hi" through the balancer: the HTTP status, and the server
            that answered (HAProxy names it)."""
            async with rest.post(
                f"{topology.rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": "hi"},
            ) as answer:
                return answer.status, answer.headers.get("X-Giftbot-Server")

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
            # REST shoppers whose turns HAProxy sends to that server (by a hash of their
            # sender, deploy/haproxy/haproxy.cfg.template).
            doomed: list[str] = []
            while len(doomed) < 4 and len(figures["rest_before"]) < 64:
                sender = f"kill-rest-{time.time_ns()}"
                status, server = await rest_turn(sender)
                figures["rest_before"].append(status)
                if server == holder:
                    doomed.append(sender)
            confirmed.clear()
            killed_at = time.monotonic()
            topology.kill(f"rasa-{number}")
            figures["killed"] = f"rasa-{number}"
            # Their next turns at once, before the balancer's checks see the server gone: each
            # is sent to the dead server, refused, and answered by the live one.
            for sender in doomed:
                figures["rest_after"].append(await rest_turn(sender))
            await asyncio.wait_for(confirmed.wait(), 60)  # reconnected, session asked again
            figures["reconnect_seconds"] = time.monotonic() - killed_at
            replies.append(await say(ACTIVE.serial))
            replies.append(await say(ACTIVE.order_number))
            figures["connects"] = connects
        finally:
            await client.disconnect()
            await session.close()
            await rest.close()
        return replies

    replies = asyncio.run(test())
    print(
        f"[scale figures] kill -9 of {figures['killed']}: the widget reconnected through the "
        f"balancer in {figures['reconnect_seconds']:.1f} s; REST right after the kill: "
        f"{figures['rest_after']}"
    )
    assert figures["rest_before"] == [200] * len(figures["rest_before"])
    survivor = "rasa2" if figures["killed"] == "rasa-1" else "rasa1"
    assert figures["rest_after"] == [(200, survivor)] * 4
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


def _open_connections(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has open to ``port`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
            if remote_port == port and state == "01" and inode in inodes:  # 01: ESTABLISHED
                count += 1
    return count


def _inbox_rows(tracker_url: str, sender: str) -> list[str]:
    engine = sa.create_engine(tracker_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(inbox.inbox_table.c.sealed).where(inbox.inbox_table.c.sender_id == sender)
            )
            return [sealed for (sealed,) in rows]
    finally:
        engine.dispose()


def test_a_message_whose_action_hangs_when_its_server_is_killed_is_answered_after_reconnecting(
    scaled: Scaled,
) -> None:
    """The action servers are stopped (SIGSTOP) so the turn hangs in its action call; the Rasa
    server running it is killed; the next message, through the other server, first answers the
    killed turn's message from the inbox (bot/rasa_ext/inbox.py), then itself."""
    topology = scaled.topology
    for number in (1, 2):  # the test before this one left a server dead
        if topology.processes[f"rasa-{number}"].poll() is not None:
            topology.restart_rasa(number)
    actions = [topology.processes[f"actions-{number}"] for number in (1, 2)]
    actions_port = urlsplit(topology.env["GIFTBOT_ACTION_ENDPOINT_URL"]).port
    assert actions_port is not None
    secret = f"scale-kill-mid-action-{time.time_ns()}"
    sender = session_sender(secret, get_edge_settings().socket_session_key)
    figures: dict[str, Any] = {}
    question = "how much money is on my gift card? I don't want to redeem it yet"

    async def test() -> list[str]:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        client = socketio.AsyncClient(
            http_session=session, reconnection=True, reconnection_delay=0.5
        )
        received: asyncio.Queue[Any] = asyncio.Queue()
        confirmed = asyncio.Event()

        @client.event
        async def connect() -> None:
            await client.emit("session_request", {"session_secret": secret})

        client.on("session_confirm", lambda _: confirmed.set())
        client.on("bot_uttered", received.put_nowait)

        async def replies_until(text: str) -> list[str]:
            texts: list[str] = []
            while not texts or text not in texts[-1]:
                texts.append(str((await asyncio.wait_for(received.get(), 120)).get("text")))
            return texts

        try:
            await client.connect(
                topology.rasa_url, transports=["polling"], socketio_path="socket.io"
            )
            await asyncio.wait_for(confirmed.wait(), 30)
            await client.emit("user_uttered", {"message": question})
            first = await replies_until("serial number")
            holder = next(c.value for c in session.cookie_jar if c.key == "GIFTBOT_RASA")
            rasa = topology.processes[f"rasa-{int(holder.removeprefix('rasa'))}"]
            figures["killed"] = f"rasa-{int(holder.removeprefix('rasa'))}"
            for process in actions:
                os.kill(process.pid, signal.SIGSTOP)
            try:
                await client.emit("user_uttered", {"message": ACTIVE.serial})
                # Until the turn waits on its action call, its message in the inbox.
                for _ in range(600):
                    sealed = _inbox_rows(scaled.tracker_direct_url, sender)
                    if sealed and _open_connections(rasa.pid, actions_port):
                        break
                    await asyncio.sleep(0.2)
                figures["inbox_mid_turn"] = sealed
                confirmed.clear()
                killed_at = time.monotonic()
                topology.kill(figures["killed"])
            finally:
                for process in actions:
                    os.kill(process.pid, signal.SIGCONT)
            await asyncio.wait_for(confirmed.wait(), 60)  # reconnected, session asked again
            figures["reconnect_seconds"] = time.monotonic() - killed_at
            sent_at = time.monotonic()
            # Acknowledged once the server is done with it: its turn stored, the inbox emptied.
            done = asyncio.create_task(
                client.call("user_uttered", {"message": ACTIVE.order_number}, timeout=180)
            )
            later = [str((await asyncio.wait_for(received.get(), 120)).get("text"))]
            figures["replayed_seconds"] = time.monotonic() - sent_at
            if "$50.00" not in later[-1]:
                later += await replies_until("$50.00")
            figures["answered_seconds"] = time.monotonic() - sent_at
            await done
        finally:
            await client.disconnect()
            await session.close()
        return ["\n".join(first), *later]

    replies = asyncio.run(test())
    print(
        f"[scale figures] kill -9 of {figures['killed']} while its turn waited on a stopped "
        f"action server: the widget reconnected in {figures['reconnect_seconds']:.1f} s; its "
        f"next message brought the killed turn's answer (replayed from the inbox, after the "
        f"dead server's lock expired) in {figures['replayed_seconds']:.1f} s and its own in "
        f"{figures['answered_seconds']:.1f} s"
    )
    # While the turn hung, its message was in the inbox, sealed.
    [sealed] = figures["inbox_mid_turn"]
    assert sealed.startswith(codes.SEALED_PREFIX) and ACTIVE.serial not in sealed
    assert "serial number" in replies[0]
    assert "order number" in replies[1]  # the killed turn's message, answered: the form asks on
    assert "$50.00" in replies[-1]  # and the next turn used the serial that turn stored
    events = stored_events(scaled.tracker_direct_url, sender)
    said = [e["text"] for e in events if e["event"] == "user"]
    assert said == [question, ACTIVE.serial, ACTIVE.order_number]  # each once, in order
    assert duplicates(events) == 0
    assert _inbox_rows(scaled.tracker_direct_url, sender) == []
