"""Rasa's Redis lock store, made atomic and renewed while held.

Rasa processes the messages of one conversation one after the other by taking a ticket of a
``TicketLock`` kept in the lock store. With several Rasa servers that store is Redis, and
Rasa 3.6.21's ``RedisLockStore`` (rasa/core/lock_store.py) has three faults this class fixes,
each tested in ``tests/rasa_ext/test_lock_store.py`` and ``tests/scale/``:

- **Not atomic** (RasaHQ/rasa#9213). Issuing a ticket is GET, change, SET: two servers issuing
  at once both read the same lock, both write it, and one ticket is lost, so both servers serve
  the conversation at once. Finishing and cleaning up have the same race, and cleanup can delete
  a ticket issued between its check and its DELETE. Here every change is one optimistic Redis
  transaction (WATCH, GET, MULTI, SET/DEL, EXEC, retried when another server changed the key).
- **A fixed lifetime.** A ticket expires ``TICKET_LOCK_LIFETIME`` (60 s) after it is issued,
  while a turn may wait 300 s on one action call (Rasa's action timeout): a slow turn lost its
  lock and the next message ran beside it; raising the lifetime to cover that would leave a
  conversation stuck for minutes behind a server that died holding it. Here the server holding
  (or waiting with) a ticket renews it every tenth of ``GIFTBOT_LOCK_LIFETIME`` (10 s), so a
  live server keeps it as long as its turn takes (its event loop may stall for 9 s between two
  renewals), and a dead one's expires within 10 s: the next message of a conversation whose
  server was killed mid-turn waits at most that long (plus one ``POLL_SECONDS``) before it runs,
  after the killed turn's message (bot/rasa_ext/inbox.py).
- **Redis unreachable.** Rasa answered nothing (a ``LockError``) and the shopper's message was
  dropped. Here the turn goes ahead without the lock, with a warning: a conversation rarely
  sends two messages inside an outage, and a lost message is worse than that risk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import redis  # type: ignore[import-untyped]
from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX,
    LOCK_LIFETIME,
    LockError,
    RedisLockStore,
)
from rasa.utils.endpoints import EndpointConfig

from bot.settings import get_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
REDIS_TIMEOUT_SECONDS = 2.0
"""Redis calls block Rasa's event loop: an unreachable Redis may hold every turn this long."""
POLL_SECONDS = 0.1
"""How often a waiting turn looks whether it is its turn (Rasa: every second)."""
RENEWALS_PER_LIFETIME = 10
"""A held ticket is renewed this many times per lifetime: one Redis transaction a second per
turn at 10 s, and a renewal may come 9 s late without losing the lock."""


class AtomicRedisLockStore(RedisLockStore):
    """Selected in deploy/endpoints.scaled.yml; Redis from ``GIFTBOT_LOCK_STORE_URL``."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        url: str | None = None,
        lifetime_seconds: float | None = None,
    ) -> None:
        settings = get_settings()
        self.red = redis.Redis.from_url(
            url or (endpoint_config.url if endpoint_config else None) or settings.lock_store_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.key_prefix = DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX
        prefix = endpoint_config.kwargs.get("key_prefix") if endpoint_config else None
        if prefix:
            self._set_key_prefix(prefix)
        self.lifetime = float(lifetime_seconds or settings.lock_lifetime_seconds)

    # --------------------------------------------------------------- atomic changes

    def _change(self, conversation_id: str, change: Callable[[TicketLock], T]) -> T:
        """Apply ``change`` to the stored lock in one transaction; delete it when empty."""
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> T:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else TicketLock(conversation_id)
            result = change(lock)
            lock.remove_expired_tickets()
            pipe.multi()
            if lock.tickets:
                # The key lives as long as its last ticket: a dead server leaves nothing behind.
                ttl = max(ticket.expires for ticket in lock.tickets) - time.time()
                pipe.set(key, lock.dumps(), ex=max(1, math.ceil(ttl)))
            else:
                pipe.delete(key)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            return self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except redis.RedisError as error:
            raise LockError(f"Could not issue a ticket: {error}") from error

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: None)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # finish_serving deletes the lock when no one else holds a ticket, in the same step.
        self.finish_serving(conversation_id, ticket_number)

    def renew(self, conversation_id: str, ticket_number: int, lifetime: float) -> bool:
        """Push ``ticket_number``'s expiry ``lifetime`` seconds ahead; False if it is gone."""

        def extend(lock: TicketLock) -> bool:
            for ticket in lock.tickets:
                if ticket.number == ticket_number and not ticket.has_expired():
                    ticket.expires = time.time() + lifetime
                    return True
            return False

        return self._change(conversation_id, extend)

    # ------------------------------------------------------------------- the lock

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = POLL_SECONDS,
    ) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ticket lock with this store's renewed lifetime (``lock_lifetime`` ignored)."""
        try:
            ticket = self.issue_ticket(conversation_id, self.lifetime)
        except LockError as error:
            logger.warning("Lock store unreachable, turn runs without the lock: %s", error)
            yield TicketLock(conversation_id)
            return
        renewal = asyncio.create_task(self._keep_renewing(conversation_id, ticket))
        try:
            try:
                lock = await self._acquire_lock(
                    conversation_id, ticket, min(wait_time_in_seconds, POLL_SECONDS)
                )
            except redis.RedisError as error:
                logger.warning("Lock store unreachable, turn runs without the lock: %s", error)
                lock = TicketLock(conversation_id)
            yield lock
        finally:
            renewal.cancel()
            try:
                self.cleanup(conversation_id, ticket)
            except redis.RedisError as error:
                # The ticket expires on its own; the turn itself went through.
                logger.warning("Could not release a conversation lock: %s", error)

    async def _keep_renewing(self, conversation_id: str, ticket: int) -> None:
        while True:
            await asyncio.sleep(self.lifetime / RENEWALS_PER_LIFETIME)
            with suppress(redis.RedisError):
                if not self.renew(conversation_id, ticket, self.lifetime):
                    logger.warning("A conversation lock expired before its turn ended")
                    return
