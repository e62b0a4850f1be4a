"""The Redis lock store: tickets issued atomically by many servers, renewed while a turn runs,
given up by a dead server, and no lost message when Redis is unreachable (real Redis)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

import pytest
import redis

from bot.rasa_ext.lock_store import AtomicRedisLockStore
from tests.services import require_redis
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = require_redis()
    yield url


def _store(url: str, lifetime: float = 20) -> AtomicRedisLockStore:
    return AtomicRedisLockStore(url=url, lifetime_seconds=lifetime)


def test_tickets_issued_at_once_by_two_servers_are_all_kept(redis_url: str) -> None:
    """RasaHQ/rasa#9213: with GET-change-SET, concurrent issues overwrite each other's ticket."""
    conversation = f"test-{secrets.token_hex(6)}"
    stores = [_store(redis_url), _store(redis_url)]
    issued: list[int] = []
    start = threading.Barrier(len(stores))

    def issue_many(store: AtomicRedisLockStore) -> None:
        start.wait()
        for _ in range(150):
            issued.append(store.issue_ticket(conversation, 60))

    threads = [threading.Thread(target=issue_many, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        lock = stores[0].get_lock(conversation)
        assert lock is not None
        assert sorted(issued) == list(range(300))  # every number once
        assert [t.number for t in lock.tickets] == list(range(300))  # and every ticket kept
    finally:
        stores[0].red.delete(stores[0].key_prefix + conversation)


def test_turns_of_one_conversation_on_two_servers_run_one_after_the_other(
    redis_url: str,
) -> None:
    conversation = f"test-{secrets.token_hex(6)}"
    stores = [_store(redis_url, lifetime=1), _store(redis_url, lifetime=1)]
    log: list[str] = []

    async def turn(store: AtomicRedisLockStore, name: str) -> None:
        async with store.lock(conversation):
            log.append(f"{name} start")
            # Longer than the lifetime: the holder's renewals keep the other one waiting.
            await asyncio.sleep(2.5)
            log.append(f"{name} end")

    async def both() -> None:
        await asyncio.gather(turn(stores[0], "a"), turn(stores[1], "b"))

    asyncio.run(both())
    assert log in (
        ["a start", "a end", "b start", "b end"],
        ["b start", "b end", "a start", "a end"],
    )
    assert stores[0].get_lock(conversation) is None  # nothing left behind


def test_a_ticket_of_a_dead_server_expires_and_the_conversation_goes_on(redis_url: str) -> None:
    conversation = f"test-{secrets.token_hex(6)}"
    dead, alive = _store(redis_url, lifetime=1), _store(redis_url, lifetime=1)
    dead.issue_ticket(conversation, 1)  # taken, then never renewed nor released

    async def next_turn() -> bool:
        async with alive.lock(conversation) as lock:
            return not lock.is_locked(lock.now_serving or 0)

    assert asyncio.run(next_turn())
    key = alive.key_prefix + conversation
    assert alive.red.exists(key) == 0


def test_the_stored_lock_expires_with_its_last_ticket(redis_url: str) -> None:
    conversation = f"test-{secrets.token_hex(6)}"
    store = _store(redis_url)
    store.issue_ticket(conversation, 30)
    ttl = store.red.ttl(store.key_prefix + conversation)
    store.red.delete(store.key_prefix + conversation)
    assert 0 < ttl <= 30


def test_an_unreachable_redis_does_not_drop_the_turn(redis_url: str) -> None:
    proxy = TcpProxy(
        "127.0.0.1", redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
    )
    store = _store(f"redis://127.0.0.1:{proxy.port}/15")
    conversation = f"test-{secrets.token_hex(6)}"
    proxy.cut()
    ran = []

    async def turn() -> None:
        async with store.lock(conversation):
            ran.append(True)

    asyncio.run(turn())
    assert ran == [True]
    proxy.restore()
    try:
        asyncio.run(turn())  # and with Redis back, the lock is used again and released
        assert ran == [True, True] and store.get_lock(conversation) is None
    finally:
        proxy.cut()
