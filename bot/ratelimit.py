"""The one per-client rate limiter of every edge: Rasa's REST and socket.io channels and the web
server's public routes. A moving window per client address (at most ``limit`` hits in any
``window`` seconds); refused hits are not counted, so a client that backs off gets in again.

Written here rather than taken from the ``limits`` package: limits 3.x requires
``packaging>=21`` while Rasa 3.6 pins ``packaging<21``, and limits 2.x (the last line that
installs) reaches Redis asynchronously only through a second client library (coredis). This is
the same moving-window algorithm in about a hundred lines, on the ``redis`` client Rasa already
brings.

With ``GIFTBOT_RATE_LIMIT_REDIS_URL`` set, the counts live in Redis (a sorted set per client,
updated atomically by one Lua script), so that every Rasa and web process behind a load balancer
shares one count per client; otherwise each process counts in memory.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

RATE_LIMITED = "Too many requests. Please wait a minute and try again."
"""The one answer to a client over its limit: it says nothing of which limit or why."""


class WindowStore(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool:
        """Record a hit for ``key`` and say True when it is within ``limit`` per ``window``."""


class MemoryWindows:
    """The hits of the last window per key, in this process."""

    MAX_KEYS = 100_000
    """Past this many keys the expired ones are dropped (a flood of addresses is bounded)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._clock = clock

    async def hit(self, key: str, limit: int, window: float) -> bool:
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        if len(self._hits) > self.MAX_KEYS:
            self._forget_expired(now, window)
        return True

    def _forget_expired(self, now: float, window: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - window]:
            del self._hits[key]


# KEYS[1]: the client's sorted set. ARGV: now (ms), window (ms), limit, a unique member.
_MOVING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisWindows:
    """The hits of the last window per key in Redis, shared by every process that uses it.

    When Redis cannot be reached the hit is allowed (and a warning logged): the limiter is a
    brake on abuse, and the per-conversation, per-customer and per-card counters still hold;
    refusing every shopper while Redis restarts would be the worse failure.
    """

    def __init__(self, url: str, prefix: str = "giftbot:ratelimit:") -> None:
        from redis import asyncio as aioredis  # type: ignore[import-untyped]

        self._redis = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_MOVING_WINDOW)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window: float) -> bool:
        from redis.exceptions import RedisError  # type: ignore[import-untyped]

        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{secrets.token_hex(4)}"
        try:
            allowed = await self._script(
                keys=[self._prefix + key], args=[now_ms, int(window * 1000), limit, member]
            )
        except (RedisError, OSError) as exc:
            logger.warning("rate limiter: Redis unreachable (%s); allowing", type(exc).__name__)
            return True
        return bool(allowed)

    async def close(self) -> None:
        await self._redis.close()


@dataclass(frozen=True)
class Limit:
    """``limit`` hits per ``window`` seconds for each client address, under one name."""

    name: str
    limit: int
    window: float = 60.0


class RateLimiter:
    """Limits of several names (messages, connects, sign-ins) over one store."""

    def __init__(self, store: WindowStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls) -> RateLimiter:
        from bot.settings import get_edge_settings

        url = get_edge_settings().rate_limit_redis_url
        return cls(RedisWindows(url) if url else MemoryWindows())

    async def allow(self, limit: Limit, client: str) -> bool:
        """Count one hit of ``client`` against ``limit``; False when it is over the limit."""
        allowed = await self.store.hit(f"{limit.name}:{client}", limit.limit, limit.window)
        if not allowed:
            # The address is not a secret, but it is personal data: log that a limit was hit only.
            logger.warning("rate limit reached: %s", limit.name)
        return allowed


def client_address(peer: str | None, headers: Mapping[str, str], trusted_header: str | None) -> str:
    """Who is asking: the socket's peer address, or, behind a proxy of our own, the address that
    proxy put in ``trusted_header`` (e.g. ``X-Forwarded-For``).

    The rightmost entry is taken: our proxy appends the address it saw, and everything to the
    left of it came from the client and can be forged. (Behind two proxies of our own, make the
    outer one set the header and the inner one pass it through unchanged.) Without the setting
    the header is ignored entirely, so a client cannot pick its own address.
    """
    address = peer or "unknown"
    if trusted_header:
        # A proxy may append to the client's header or add a header line of its own: read all.
        getall = getattr(headers, "getall", None)
        lines = getall(trusted_header, []) if getall else [headers.get(trusted_header) or ""]
        entries = [e.strip() for line in lines for e in str(line).split(",") if e.strip()]
        if entries:
            address = entries[-1][:100]
    return _counted_as(address)


def _counted_as(address: str) -> str:
    """One count per IPv4 address, and per /64 for IPv6: one subscriber usually gets a whole
    /64, so counting single IPv6 addresses would let a client rotate through billions."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
