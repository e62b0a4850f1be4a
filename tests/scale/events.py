"""What the scale tests read back: the tracker store's rows and the events on RabbitMQ.

Each test binds a queue of its own to the topology's fanout exchange, so it sees every event
published from then on, whatever the other tests do.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import sqlalchemy as sa

from bot.wallet import codes


def stored_events(tracker_url: str, sender: str) -> list[dict[str, Any]]:
    """The tracker store's events of ``sender``, in the order Rasa reads them."""
    engine = sa.create_engine(tracker_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :sender ORDER BY id"),
                {"sender": sender},
            )
            return [json.loads(data) for (data,) in rows]
    finally:
        engine.dispose()


def event_key(event: dict[str, Any]) -> tuple[str, float, str]:
    """What tells two events apart: kind, timestamp and the action or slot they name (not the
    text, which the tracker store and the broker may redact differently)."""
    return (event["event"], float(event.get("timestamp") or 0), str(event.get("name") or ""))


def duplicates(events: list[dict[str, Any]]) -> int:
    counts = Counter(event_key(e) for e in events)
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass
class EventQueue:
    amqp_url: str
    exchange: str
    name: str

    @classmethod
    def bind(cls, amqp_url: str, exchange: str) -> EventQueue:
        queue = cls(amqp_url, exchange, f"{exchange}_{secrets.token_hex(4)}")

        async def declare() -> None:
            connection = await aio_pika.connect(amqp_url)
            async with connection:
                channel = await connection.channel()
                declared = await channel.declare_queue(queue.name, durable=True)
                await declared.bind(exchange, "")

        asyncio.run(declare())
        return queue

    def read(
        self, until: Callable[[list[dict[str, Any]]], bool], limit_seconds: float = 60
    ) -> list[dict[str, Any]]:
        """Every message on the queue so far, read until ``until`` holds of them (or the
        limit passes: the caller's assertions then say what is missing)."""

        async def consume() -> list[dict[str, Any]]:
            bodies: list[dict[str, Any]] = []
            connection = await aio_pika.connect(self.amqp_url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(self.name)
                deadline = time.monotonic() + limit_seconds
                while not until(bodies) and time.monotonic() < deadline:
                    message = await queue.get(fail=False)
                    if message is None:
                        await asyncio.sleep(0.1)
                        continue
                    await message.ack()
                    bodies.append(json.loads(message.body))
            return bodies

        return asyncio.run(consume())

    def delete(self) -> None:
        async def delete() -> None:
            connection = await aio_pika.connect(self.amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(self.name)

        asyncio.run(delete())


def secrets_on_queue(
    bodies: list[dict[str, Any]], *claim_codes: str, tokens: tuple[str, ...] = ()
) -> int:
    """How many messages hold a claim code in clear (any spelling) or a customer token."""
    found = 0
    for body in bodies:
        raw = json.dumps(body)
        compact = raw.upper().replace("-", "").replace(" ", "")
        if any(codes.parse_claim_code(code) in compact for code in claim_codes) or any(
            token in raw for token in tokens
        ):
            found += 1
    return found
