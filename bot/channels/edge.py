"""What the project's own REST and socket.io channels enforce before Rasa sees a message:
one size cap, one per-address rate limiter, one way to tell who the client is."""

from __future__ import annotations

from functools import lru_cache

from bot.ratelimit import RateLimiter

TOO_LONG = (
    "That message is too long for me to read. Please keep it shorter "
    "(at most {limit:,} characters) and send it again."
)
"""Sent as the assistant's reply to an oversized message; nothing else happens with it."""

SLOW_DOWN = "You're sending messages faster than I can read them. Please wait a minute."
"""The assistant's reply on socket.io when a client is over its message limit."""

MAX_SENDER_CHARS = 256
MAX_METADATA_BYTES = 64 * 1024


@lru_cache(maxsize=1)
def edge_limiter() -> RateLimiter:
    """The limiter every channel of this process shares (one Redis connection pool)."""
    return RateLimiter.from_settings()
