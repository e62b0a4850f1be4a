"""The socket.io channel (bot/channels/socketio.py) against the real Rasa server: a conversation
belongs to the client holding its secret, oversized and malformed messages change nothing,
connects and messages are limited per address, and rooms are shared through Redis (issue 8,
findings 3, 4 and 7)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import socketio

from bot.channels.edge import SLOW_DOWN, TOO_LONG
from bot.channels.socketio import ROOMS_CHANNEL, UNREADABLE, session_sender
from bot.settings import get_edge_settings
from tests.security.edge import CONNECT_LIMIT, MAX_CHARS, MESSAGE_LIMIT, stored_events
from tests.security.sockets import Shopper
from tests.servers import Servers

pytestmark = pytest.mark.servers


def user_texts(servers: Servers, sender: str) -> list[str]:
    return [e["text"] for e in stored_events(servers, sender) if e["event"] == "user"]


def test_knowing_a_session_id_gives_neither_its_replies_nor_its_conversation(
    edge_servers: Servers,
) -> None:
    async def scenario() -> None:
        owner, intruder = Shopper(edge_servers), Shopper(edge_servers)
        secret = secrets.token_hex(16)
        await owner.connect()
        confirmed = await owner.session({"session_secret": secret})
        session_id = session_sender(secret, get_edge_settings().socket_session_key)
        assert confirmed == {"session_id": session_id, "session_secret": secret}
        assert await owner.say("hi")

        # The intruder knows the id (it is the conversation's name everywhere) and asks for it
        # both ways a client can: Rasa's own {session_id} and the widget's {session_secret}.
        await intruder.connect()
        for request in ({"session_id": session_id}, {"session_secret": session_id}):
            await intruder.session(request)
            intruder_before = len(intruder.replies)
            await intruder.send(
                {"message": "what is my gift card balance", "session_id": session_id}
            )
            # The owner's next turn: every reply misrouted to the intruder would be in its
            # queue before the reply to its own next message.
            owner_replies = await owner.say("thanks")
            assert owner_replies
            await intruder.say("hello")
            intruder_texts = [r.get("text") for r in intruder.replies[intruder_before:]]
            assert not set(owner_replies) & set(intruder_texts)
        # The intruder never drove the conversation, and the owner never saw its replies.
        assert user_texts(edge_servers, session_id) == ["hi", "thanks", "thanks"]

        # The owner, back with the secret on a new connection (a reload), continues it.
        await owner.close()
        back = Shopper(edge_servers, owner.address)
        await back.connect()
        assert (await back.session({"session_secret": secret}))["session_id"] == session_id
        assert await back.say("bye")
        assert user_texts(edge_servers, session_id)[-1] == "bye"
        await back.close()
        await intruder.close()

    asyncio.run(scenario())


def test_rasas_own_clients_keep_their_conversation_across_reloads(edge_servers: Servers) -> None:
    """A client that sends only {session_id} (Rasa's web chat) is confirmed with that id and
    comes back to the same conversation, whose real id only the server knows."""

    async def scenario() -> None:
        legacy_id = secrets.token_hex(16)
        real_id = session_sender(legacy_id, get_edge_settings().socket_session_key)
        for text in ("hi", "thanks"):
            client = Shopper(edge_servers)
            await client.connect()
            assert await client.session({"session_id": legacy_id}) == legacy_id
            assert await client.say(text)
            await client.close()
        assert user_texts(edge_servers, real_id) == ["hi", "thanks"]
        assert user_texts(edge_servers, legacy_id) == []

    asyncio.run(scenario())


def test_oversized_and_malformed_messages_change_nothing(edge_servers: Servers) -> None:
    async def scenario() -> None:
        shopper = Shopper(edge_servers)
        await shopper.connect()
        # Before any session request a message goes nowhere.
        assert await shopper.send({"message": "hi"}) == []
        confirmed = await shopper.session({"session_secret": secrets.token_hex(16)})
        session_id = confirmed["session_id"]
        assert stored_events(edge_servers, session_id) == []

        too_long = "word " * (MAX_CHARS // 5) + "x"
        assert await shopper.send({"message": too_long}) == [
            {"text": TOO_LONG.format(limit=MAX_CHARS)}
        ]
        for data in (
            {"message": 5},
            {"message": ["hi"]},
            {},
            {"message": "hi", "metadata": "not json"},
            {"message": "hi", "metadata": "[1, 2]"},
            {"message": "hi", "metadata": [1]},
        ):
            assert await shopper.send(data) == [{"text": UNREADABLE}], data
        assert stored_events(edge_servers, session_id) == []

        # Exactly at the cap it is read (metadata as a JSON string, as Rasa accepts it).
        answer = await shopper.send({"message": too_long[:MAX_CHARS], "metadata": "{}"})
        assert answer and {"text": TOO_LONG.format(limit=MAX_CHARS)} not in answer
        assert len(user_texts(edge_servers, session_id)) == 1
        await shopper.close()

    asyncio.run(scenario())


def test_connects_are_limited_per_address(edge_servers: Servers) -> None:
    async def scenario() -> None:
        first = Shopper(edge_servers)
        clients = [first] + [Shopper(edge_servers, first.address) for _ in range(CONNECT_LIMIT)]
        for client in clients[:CONNECT_LIMIT]:
            await client.connect()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients[CONNECT_LIMIT].connect()
        other = Shopper(edge_servers)  # another address connects as usual
        await other.connect()
        for client in [*clients[:CONNECT_LIMIT], other]:
            await client.close()

    asyncio.run(scenario())


def test_messages_are_limited_per_address(edge_servers: Servers) -> None:
    async def scenario() -> None:
        shopper = Shopper(edge_servers)
        await shopper.connect()
        session_id = (await shopper.session({"session_secret": secrets.token_hex(16)}))[
            "session_id"
        ]
        # Every message counts, read or refused (refused ones cost the server nothing).
        for _ in range(MESSAGE_LIMIT):
            assert await shopper.send({"message": 5}) == [{"text": UNREADABLE}]
        assert await shopper.send({"message": "hi"}) == [{"text": SLOW_DOWN}]
        assert stored_events(edge_servers, session_id) == []
        await shopper.close()

    asyncio.run(scenario())


def test_rooms_are_shared_between_processes_through_redis(edge_servers: Servers) -> None:
    """What another Rasa process sends to a conversation (its room) reaches the shopper
    connected to this one: here the other process is python-socketio's Redis emitter."""
    redis_url = edge_servers.env["GIFTBOT_SOCKETIO_REDIS_URL"]
    if not redis_url:
        pytest.skip("Redis is not reachable (the edge servers run without shared rooms)")

    async def scenario() -> None:
        shopper, bystander = Shopper(edge_servers), Shopper(edge_servers)
        for client in (shopper, bystander):
            await client.connect()
        session_id = (await shopper.session({"session_secret": secrets.token_hex(16)}))[
            "session_id"
        ]
        await bystander.session({"session_secret": secrets.token_hex(16)})
        elsewhere = socketio.AsyncRedisManager(redis_url, channel=ROOMS_CHANNEL, write_only=True)
        before = len(shopper.replies)
        await elsewhere.emit("bot_uttered", {"text": "from another process"}, room=session_id)
        assert await shopper.next_reply(before) == {"text": "from another process"}
        assert await bystander.say("hi")  # its own reply, and nothing of the other room
        assert {"text": "from another process"} not in bystander.replies
        await elsewhere.redis.close()
        for client in (shopper, bystander):
            await client.close()

    asyncio.run(scenario())
