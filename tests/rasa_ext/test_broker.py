"""The event broker (real RabbitMQ): every event redacted on every path, including the tracker
store's in-memory fallback, and events published during an outage delivered afterwards."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import make_url

from bot.rasa_ext.broker import RedactingPikaEventBroker
from bot.rasa_ext.tracker_store import ResilientSQLTrackerStore
from tests.services import require_rabbitmq
from tests.tcp_proxy import TcpProxy

CODE = "AQ4T-B7XWZC-9M2P"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token.sig"


def _message(sender: str = "ann") -> dict[str, Any]:
    event = UserUttered(
        f"my code {CODE} is broken",
        intent={"name": "inform", "confidence": 0.9},
        entities=[{"entity": "claim_code", "value": CODE, "start": 8, "end": 24}],
        metadata={"customer_token": TOKEN},
    )
    return {"sender_id": sender, **event.as_dict()}


@asynccontextmanager
async def _broker(
    amqp_url: str, direct_url: str | None = None
) -> AsyncIterator[tuple[RedactingPikaEventBroker, Any]]:
    """A broker on an exchange and queue of the test's own, and a way to read the queue
    (``direct_url``: when the broker's own way to RabbitMQ is to be cut)."""
    name = f"giftbot_test_{secrets.token_hex(6)}"
    broker = RedactingPikaEventBroker(
        amqp_url, queues=[name], exchange_name=name, connection_attempts=2
    )
    await broker.connect()
    reader = await aio_pika.connect(direct_url or amqp_url)
    channel = await reader.channel()
    queue = await channel.get_queue(name)
    try:
        yield broker, queue
    finally:
        await broker.close()
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(name)
        await reader.close()


async def _drain(queue: Any, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict]:
    """Messages read from ``queue`` until ``until`` holds (the test's own timeout ends it)."""
    bodies: list[dict[str, Any]] = []
    while not until(bodies):
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        bodies.append(json.loads(message.body))
    return bodies


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=60))


def test_published_events_hold_no_claim_code_and_no_token() -> None:
    amqp_url = require_rabbitmq()

    async def test() -> None:
        async with _broker(amqp_url) as (broker, queue):
            broker.publish(_message())
            broker.publish({"sender_id": "ann", **SlotSet("claim_code", CODE).as_dict()})
            bodies = await _drain(queue, lambda got: len(got) == 2)
        raw = json.dumps(bodies)
        assert "B7XWZC" not in raw and TOKEN not in raw
        assert bodies[0]["sender_id"] == "ann" and bodies[0]["event"] == "user"
        assert "[claim code hidden]" in bodies[0]["text"]
        assert bodies[0]["metadata"]["customer_token"] != TOKEN
        assert bodies[1]["value"].startswith("sealed:")

    _run(test)


def test_an_answer_to_the_claim_code_question_is_hidden_whole() -> None:
    """Even one that is no valid claim code (a typo): the broker follows the conversation."""
    amqp_url = require_rabbitmq()
    answer = "the one my aunt sent me"

    async def test() -> None:
        async with _broker(amqp_url) as (broker, queue):
            broker.publish(
                {"sender_id": "ann", **SlotSet("requested_slot", "claim_code").as_dict()}
            )
            broker.publish({"sender_id": "ann", **UserUttered(answer).as_dict()})
            broker.publish({"sender_id": "ben", **UserUttered(answer).as_dict()})
            bodies = await _drain(queue, lambda got: len(got) == 3)
        texts = {b["sender_id"]: b["text"] for b in bodies if b["event"] == "user"}
        assert texts == {"ann": "[claim code hidden]", "ben": answer}

    _run(test)


def test_the_tracker_stores_in_memory_fallback_publishes_redacted_events(
    pg_schema_url: str,
) -> None:
    """PostgreSQL gone mid-conversation: Rasa's FailSafeTrackerStore saves into an in-memory
    store whose broker path skips the tracker store's redaction; the broker redacts anyway."""
    amqp_url = require_rabbitmq()
    url = make_url(pg_schema_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)

    async def test() -> None:
        async with _broker(amqp_url) as (broker, queue):
            primary = ResilientSQLTrackerStore(Domain.empty(), host=via_proxy, event_broker=broker)
            store = FailSafeTrackerStore(primary)
            tracker = DialogueStateTracker("ann", [])
            tracker.update(UserUttered(f"my code {CODE}", metadata={"customer_token": TOKEN}))
            proxy.cut()
            try:
                await store.save(tracker)  # primary fails: the fallback saves and streams it
                bodies = await _drain(queue, lambda got: any(b["event"] == "user" for b in got))
            finally:
                proxy.restore()
                primary.engine.dispose()
        raw = json.dumps(bodies)
        assert "B7XWZC" not in raw and TOKEN not in raw
        texts = [b["text"] for b in bodies if b["event"] == "user"]
        assert len(texts) == 1 and "[claim code hidden]" in texts[0]

    try:
        _run(test)
    finally:
        proxy.cut()


def test_events_published_while_rabbitmq_is_unreachable_arrive_once_it_is_back(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    amqp_url = require_rabbitmq()
    real = urlsplit(amqp_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5672)
    credentials = f"{real.username or 'guest'}:{real.password or 'guest'}"
    via_proxy = real._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}").geturl()

    async def test() -> None:
        async with _broker(via_proxy, amqp_url) as (broker, queue):
            broker.publish(_message("before"))
            await _drain(queue, lambda got: len(got) == 1)
            while broker._background_tasks:  # RabbitMQ's confirmation of it is in too
                await asyncio.sleep(0.05)
            proxy.cut()
            for number in range(3):
                broker.publish(_message(f"during-{number}"))
            while broker.unpublished_count < 3:  # each publish failed and waits in memory
                await asyncio.sleep(0.05)
            proxy.restore()  # aio-pika reconnects; the waiting events go out
            bodies = await _drain(queue, lambda got: len({b["sender_id"] for b in got}) == 3)
        assert {b["sender_id"] for b in bodies} == {f"during-{n}" for n in range(3)}
        assert broker.unpublished_count == 0
        assert "event(s) wait in memory" in caplog.text
        captured = capfd.readouterr()
        for logged in (caplog.text, captured.out, captured.err):
            assert "is broken" not in logged  # the shopper's words are never logged

    try:
        _run(test)
    finally:
        proxy.cut()


def test_the_broker_starts_while_rabbitmq_is_unreachable_and_the_events_follow() -> None:
    """Rasa's broker tried 20 times, 5 s apart, and then Rasa did not start; this one returns
    at once, keeps the events, and delivers them once RabbitMQ can be reached."""
    amqp_url = require_rabbitmq()
    real = urlsplit(amqp_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5672)
    credentials = f"{real.username or 'guest'}:{real.password or 'guest'}"
    via_proxy = real._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}").geturl()
    name = f"giftbot_test_{secrets.token_hex(6)}"
    proxy.cut()

    async def test() -> list[dict[str, Any]]:
        config = EndpointConfig(
            url=via_proxy,
            queues=[name],
            exchange_name=name,
            connection_attempts=1,
            retry_delay_in_seconds=0.2,
        )
        broker = await RedactingPikaEventBroker.from_endpoint_config(config)
        assert broker is not None and not broker.is_ready()  # not connected, and yet here
        broker.publish(_message("while-down-1"))
        broker.publish(_message("while-down-2"))
        while broker.unpublished_count < 2:  # each publish is a task of its own
            await asyncio.sleep(0.01)
        proxy.restore()
        while not broker.is_ready() or broker.unpublished_count:
            await asyncio.sleep(0.1)
        reader = await aio_pika.connect(amqp_url)
        try:
            channel = await reader.channel()
            queue = await channel.get_queue(name)
            bodies = await _drain(queue, lambda got: len(got) == 2)
            await queue.delete(if_unused=False, if_empty=False)
            await channel.exchange_delete(name)
        finally:
            await reader.close()
            await broker.close()
        return bodies

    try:
        bodies = asyncio.run(asyncio.wait_for(test(), 60))
    finally:
        proxy.cut()
    assert sorted(b["sender_id"] for b in bodies) == ["while-down-1", "while-down-2"]
    assert all("B7XWZC" not in json.dumps(b) for b in bodies)
