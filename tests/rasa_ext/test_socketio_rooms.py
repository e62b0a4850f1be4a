"""socket.io rooms through Redis (real Redis, real socket.io servers and clients): a message to a
room arrives once on every server's sockets, this server's own before the acknowledgement of the
event that sent it, and still arrives when Redis is unreachable."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import redis
import socketio
from aiohttp import web

from bot.rasa_ext.socketio_rooms import LocalFallbackRedisManager
from tests.servers import free_port
from tests.services import require_redis
from tests.tcp_proxy import TcpProxy


def test_a_room_message_arrives_once_with_redis_and_still_arrives_without() -> None:
    redis_url = require_redis()
    port = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
    proxy = TcpProxy("127.0.0.1", port)
    channel = f"giftbot-test-{secrets.token_hex(4)}"

    async def test() -> list[Any]:
        manager = LocalFallbackRedisManager(f"redis://127.0.0.1:{proxy.port}/15", channel=channel)
        server = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
        app = web.Application()
        server.attach(app)
        joined = asyncio.Event()

        @server.on("join")
        async def join(sid: str, room: str) -> None:
            server.enter_room(sid, room)
            joined.set()

        runner = web.AppRunner(app)
        await runner.setup()
        server_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", server_port, shutdown_timeout=1).start()
        received: asyncio.Queue[Any] = asyncio.Queue()
        http = aiohttp.ClientSession()
        client = socketio.AsyncClient(http_session=http)
        client.on("bot_uttered", received.put_nowait)
        got = []
        try:
            await client.connect(f"http://127.0.0.1:{server_port}", transports=["polling"])
            await client.emit("join", "conversation-1")
            await asyncio.wait_for(joined.wait(), 10)
            await asyncio.sleep(0.5)  # the manager's Redis listener subscribes
            await server.emit("bot_uttered", {"text": "through Redis"}, room="conversation-1")
            got.append(await asyncio.wait_for(received.get(), 10))
            proxy.cut()
            await server.emit("bot_uttered", {"text": "Redis is down"}, room="conversation-1")
            got.append(await asyncio.wait_for(received.get(), 10))
            proxy.restore()
            await asyncio.sleep(0.5)
            assert received.empty()  # nothing arrived twice
        finally:
            await client.disconnect()
            await http.close()
            await runner.cleanup()
        return got

    try:
        got = asyncio.run(asyncio.wait_for(test(), 60))
    finally:
        proxy.cut()
    assert [m["text"] for m in got] == ["through Redis", "Redis is down"]


def slow_pubsub_delivery(chunk: bytes) -> float:
    """Seconds to hold back a chunk Redis sends: its pub/sub pushes (RESP ``message``)."""
    return 0.3 if chunk.startswith(b"*3\r\n$7\r\nmessage\r\n") else 0.0


def test_a_reply_reaches_its_own_socket_before_the_ack_and_other_servers_once() -> None:
    """The shopper's socket is on server A, a second tab of the same conversation on server B:
    A's reply is on the shopper's socket before the acknowledgement of the message it answers
    (the order the widget and Rasa's channel rely on), and reaches B's socket once, through
    Redis. Here Redis is slow to deliver published messages (0.3 s), as a busy one can be."""
    redis_url = require_redis()
    port = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
    proxy = TcpProxy("127.0.0.1", port, delay=slow_pubsub_delivery)
    channel = f"giftbot-test-{secrets.token_hex(4)}"
    room = "conversation-1"

    async def test() -> tuple[list[list[Any]], list[Any]]:
        servers, runners, ports = [], [], []
        for _ in range(2):
            manager = LocalFallbackRedisManager(
                f"redis://127.0.0.1:{proxy.port}/15", channel=channel
            )
            server = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
            app = web.Application()
            server.attach(app)

            @server.on("join")
            async def join(sid: str, name: str, server: socketio.AsyncServer = server) -> str:
                server.enter_room(sid, name)
                return "joined"

            @server.on("ask")
            async def ask(sid: str, text: str, server: socketio.AsyncServer = server) -> str:
                await server.emit("bot_uttered", {"text": f"re: {text}"}, room=room)
                return "ack"

            runner = web.AppRunner(app)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=1).start()
            servers.append(server)
            runners.append(runner)
            ports.append(port)

        http = aiohttp.ClientSession()
        clients = [socketio.AsyncClient(http_session=http) for _ in range(2)]
        received: list[list[Any]] = [[], []]
        arrived_on_b = asyncio.Event()
        clients[0].on("bot_uttered", received[0].append)
        clients[1].on("bot_uttered", lambda m: (received[1].append(m), arrived_on_b.set()))
        seen_at_ack: list[Any] = []
        try:
            for client, port in zip(clients, ports):
                await client.connect(f"http://127.0.0.1:{port}", transports=["polling"])
                assert await client.call("join", room, timeout=10) == "joined"
            await asyncio.sleep(1.5)  # the managers' Redis listeners subscribe
            for n in range(5):
                assert await clients[0].call("ask", f"question {n}", timeout=10) == "ack"
                seen_at_ack.append(list(received[0]))
            while len(received[1]) < 5:
                arrived_on_b.clear()
                await asyncio.wait_for(arrived_on_b.wait(), 10)
            await asyncio.sleep(1.5)  # anything sent twice would be here by now
        finally:
            for client in clients:
                await client.disconnect()
            await http.close()
            for runner in runners:
                await runner.cleanup()
        return received, seen_at_ack

    try:
        received, seen_at_ack = asyncio.run(asyncio.wait_for(test(), 60))
    finally:
        proxy.cut()
    replies = [{"text": f"re: question {n}"} for n in range(5)]
    assert seen_at_ack == [replies[: n + 1] for n in range(5)]
    assert received == [replies, replies]
