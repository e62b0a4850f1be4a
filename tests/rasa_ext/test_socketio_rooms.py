"""socket.io rooms through Redis (real Redis, real socket.io server and client): a message to a
room arrives once through Redis, and still arrives when Redis is unreachable."""

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
        await web.TCPSite(runner, "127.0.0.1", server_port).start()
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
