"""RabbitMQ, PostgreSQL and Redis each lost mid-conversation and back (the topology reaches
each through a TCP proxy of the tests' own, which a test cuts: a real lost connection).

For every outage: each reply comes within ``REPLY_BOUND_SECONDS``, every message the shopper
sent reaches the event queue, every event the tracker store holds reaches the queue at least
once, and no message on the queue holds a claim code or a customer token. The figures (reply
times, time to recover, events lost and duplicated, secrets on the queue) are printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.wallet.demo import CARDS
from tests.scale.conftest import Scaled
from tests.scale.events import EventQueue, duplicates, event_key, secrets_on_queue, stored_events
from tests.servers import Chat
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.servers
ACTIVE = CARDS[0]
REPLY_BOUND_SECONDS = 30
"""No reply waits longer, whatever is down: connect timeouts are 2 s (Redis) and 5 s
(PostgreSQL), RabbitMQ is published to in the background."""
RECOVERY_LIMIT_SECONDS = 120


@dataclass
class Figures:
    service: str
    reply_seconds: list[float] = field(default_factory=list)
    recovery_seconds: float = 0.0
    tracker_events: int = 0
    queue_events: int = 0
    lost: int = 0
    duplicated: int = 0
    secrets_on_queue: int = 0

    def report(self) -> str:
        return (
            f"[scale figures] {self.service} outage: slowest reply "
            f"{max(self.reply_seconds):.2f} s (bound {REPLY_BOUND_SECONDS} s), recovered in "
            f"{self.recovery_seconds:.1f} s, tracker store {self.tracker_events} events, queue "
            f"{self.queue_events} events, lost {self.lost}, duplicated {self.duplicated}, "
            f"claim codes or tokens on the queue {self.secrets_on_queue}"
        )


@pytest.fixture
def queue(scaled: Scaled) -> Iterator[EventQueue]:
    bound = EventQueue.bind(scaled.amqp_url, scaled.exchange)
    yield bound
    bound.delete()


def _timed_say(chat: Chat, message: str, figures: Figures) -> str:
    started = time.monotonic()
    reply = chat.say(message)
    figures.reply_seconds.append(time.monotonic() - started)
    assert figures.reply_seconds[-1] < REPLY_BOUND_SECONDS
    return reply


def _outage(
    scaled: Scaled, queue: EventQueue, proxy: TcpProxy, service: str
) -> tuple[Figures, list[str], Chat]:
    """A balance conversation through the balancer, signed in, with the service cut for two
    turns (one of which types a claim code), then restored for the last turn."""
    figures = Figures(service)
    token = scaled.token("ann@example.com")
    chat = scaled.topology.chat(token)
    replies = [
        _timed_say(
            chat, "how much money is on my gift card? I don't want to redeem it yet", figures
        )
    ]
    proxy.cut()
    try:
        replies.append(_timed_say(chat, "1712 3456 7890", figures))
        replies.append(_timed_say(chat, f"is it the one with claim code {CLAIM_CODE}?", figures))
    finally:
        proxy.restore()
    restored = time.monotonic()
    replies.append(_timed_say(chat, ACTIVE.serial, figures))
    sent = [text for who, text in chat.transcript if who == "user"]
    stored = stored_events(scaled.tracker_direct_url, chat.sender)
    wanted = {event_key(e) for e in stored}

    def all_delivered(bodies: list[dict[str, Any]]) -> bool:
        mine = [b for b in bodies if b.get("sender_id") == chat.sender]
        users = [b for b in mine if b.get("event") == "user"]
        return len(users) >= len(sent) and wanted <= {event_key(b) for b in mine}

    bodies = queue.read(all_delivered, RECOVERY_LIMIT_SECONDS)
    figures.recovery_seconds = time.monotonic() - restored
    mine = [b for b in bodies if b.get("sender_id") == chat.sender]
    on_queue = {event_key(b) for b in mine}
    figures.tracker_events, figures.queue_events = len(stored), len(mine)
    figures.lost = len(wanted - on_queue)
    figures.duplicated = duplicates(mine)
    figures.secrets_on_queue = secrets_on_queue(bodies, CLAIM_CODE, tokens=(token,))
    print(figures.report())
    # Every message the shopper sent is on the queue (masked), in order.
    assert len([b for b in mine if b["event"] == "user"]) >= len(sent)
    assert figures.lost == 0 and figures.secrets_on_queue == 0
    return figures, replies, chat


CLAIM_CODE = "RW7T-K4NMPX-2H9C"


def test_rabbitmq_lost_and_back(scaled: Scaled, queue: EventQueue) -> None:
    figures, replies, _chat = _outage(scaled, queue, scaled.rabbitmq, "RabbitMQ")
    assert "19 digits; I counted 12" in replies[1]  # the conversation never noticed
    assert "$50.00" in replies[3] or "order number" in replies[3]


def test_redis_lost_and_back(scaled: Scaled, queue: EventQueue) -> None:
    figures, replies, _chat = _outage(scaled, queue, scaled.redis, "Redis")
    assert "19 digits; I counted 12" in replies[1]  # turns run without the lock meanwhile


def test_postgresql_lost_and_back(scaled: Scaled, queue: EventQueue) -> None:
    figures, replies, chat = _outage(scaled, queue, scaled.postgres, "PostgreSQL")
    # Back on PostgreSQL, the conversation goes on from the last turn it stored.
    assert replies[3]
    followup = chat.say("what is my gift card balance")
    assert followup
