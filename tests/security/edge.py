"""The Rasa and action servers of the edge tests: the project's channels with the real limits.

One start for the whole ``tests/security`` package (``edge_servers`` in conftest.py), separate
from the suite's shared servers, which run with limits far above a test's pace. Each test speaks
as a client address of its own through the trusted ``X-Forwarded-For`` header, so that one
test's count never spends another's.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path
from typing import Any

import redis

from tests.servers import Servers

REDIS_URL = os.environ.get("GIFTBOT_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
MESSAGE_LIMIT = 20
CONNECT_LIMIT = 10
MAX_CHARS = 2_000
PROXY_HEADER = "X-Forwarded-For"

_addresses = itertools.count(1)


def new_client_address() -> str:
    """An address no other test has used (only ever written into a header, never contacted)."""
    n = next(_addresses)
    return f"127.77.{n // 250}.{n % 250 + 1}"


def redis_available() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError:
        return False
    return True


def start_edge_servers(var_dir: Path, socketio_redis_url: str | None) -> Servers:
    env = {
        "GIFTBOT_RATE_LIMIT_MESSAGES": str(MESSAGE_LIMIT),
        "GIFTBOT_RATE_LIMIT_CONNECTS": str(CONNECT_LIMIT),
        "GIFTBOT_MAX_MESSAGE_CHARS": str(MAX_CHARS),
        "GIFTBOT_TRUSTED_PROXY_HEADER": PROXY_HEADER,
    }
    if socketio_redis_url:
        env["GIFTBOT_SOCKETIO_REDIS_URL"] = socketio_redis_url
    return Servers.start(var_dir, extra_env=env)


def stored_events(servers: Servers, sender: str) -> list[dict[str, Any]]:
    """The events the tracker store holds for ``sender`` (read from its SQLite file)."""
    import json

    path = servers.var_dir / "tracker.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(data) for (data,) in rows]
