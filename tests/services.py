"""The machine's Redis, RabbitMQ and HAProxy, for the tests that need them.

Each ``require_*`` returns what the test needs, or skips it with the reason, except under CI
(``CI`` set) where a missing service is a failure. PostgreSQL is ``pg_url`` in conftest.py.
"""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("GIFTBOT_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
AMQP_URL = os.environ.get("GIFTBOT_TEST_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/"


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def require_redis() -> str:
    if not _reachable(REDIS_URL, 6379):
        missing(f"Redis is not reachable at {REDIS_URL} (set GIFTBOT_TEST_REDIS_URL)")
    return REDIS_URL


def require_rabbitmq() -> str:
    if not _reachable(AMQP_URL, 5672):
        missing("RabbitMQ is not reachable (set GIFTBOT_TEST_AMQP_URL)")
    return AMQP_URL


def require_haproxy() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if path is None:
        missing("HAProxy is not installed (make test installs it as root: apt-get install haproxy)")
    assert path is not None
    return path
