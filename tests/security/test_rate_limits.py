"""The per-client rate limiter (bot/ratelimit.py): its moving window, who counts as the client,
one count shared by every process through the real Redis, and the web server's public routes
(issue 8, finding 7). The Rasa server's channels are in test_rest_channel.py and
test_socketio_channel.py."""

from __future__ import annotations

import asyncio
import json
import os
import secrets

import pytest
from multidict import CIMultiDict

from bot.ratelimit import (
    RATE_LIMITED,
    Limit,
    MemoryWindows,
    RateLimiter,
    RedisWindows,
    client_address,
)
from tests.security.edge import REDIS_URL, new_client_address, redis_available
from tests.security.webserver import web_server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_moving_window_lets_a_client_in_again_as_its_old_hits_age() -> None:
    clock = Clock()
    limiter = RateLimiter(MemoryWindows(clock))
    limit = Limit("messages", 3, window=60)

    async def hits(client: str, n: int) -> list[bool]:
        return [await limiter.allow(limit, client) for _ in range(n)]

    async def scenario() -> None:
        assert await hits("a", 4) == [True, True, True, False]
        assert await hits("b", 1) == [True]  # each client has its own count
        clock.now += 59.9
        assert await hits("a", 1) == [False]  # refused hits were not counted, the 3 still are
        clock.now += 0.2  # the first three are now over a minute old
        assert await hits("a", 4) == [True, True, True, False]

    asyncio.run(scenario())


def test_the_client_is_the_peer_unless_a_trusted_header_is_configured() -> None:
    forged = CIMultiDict([("X-Forwarded-For", "127.1.1.1")])
    assert client_address("127.0.0.9", forged, None) == "127.0.0.9"
    assert client_address("127.0.0.9", forged, "X-Forwarded-For") == "127.1.1.1"
    # Our proxy's entry is the rightmost, whether it appends to the client's header...
    appended = CIMultiDict([("X-Forwarded-For", "127.1.1.1, 127.2.2.2")])
    assert client_address("127.0.0.9", appended, "X-Forwarded-For") == "127.2.2.2"
    # ...or adds a header line of its own after the client's.
    two_lines = CIMultiDict([("X-Forwarded-For", "127.1.1.1"), ("X-Forwarded-For", "127.2.2.2")])
    assert client_address("127.0.0.9", two_lines, "x-forwarded-for") == "127.2.2.2"
    # Configured but missing (a request that did not come through the proxy): the peer.
    assert client_address("127.0.0.9", CIMultiDict(), "X-Forwarded-For") == "127.0.0.9"
    # IPv6 counts per /64 (what one subscriber gets), IPv4 inside IPv6 as IPv4.
    assert client_address("2001:db8:1:2:aaaa::1", forged, None) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:2:ffff::9", forged, None) == "2001:db8:1:2::/64"
    assert client_address("::ffff:127.0.0.9", forged, None) == "127.0.0.9"


@pytest.fixture
def redis_url() -> str:
    if not redis_available():
        reason = f"Redis is not reachable at {REDIS_URL}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set)", pytrace=False)
        pytest.skip(reason)
    return REDIS_URL


def test_processes_sharing_redis_share_one_count(redis_url: str) -> None:
    """Two limiters, as in two Rasa processes behind a load balancer: one count per client."""
    limit = Limit(f"test-{secrets.token_hex(6)}", 4, window=60)

    async def scenario() -> None:
        first, second = RedisWindows(redis_url), RedisWindows(redis_url)
        one, two = RateLimiter(first), RateLimiter(second)
        answers = [await (one if n % 2 else two).allow(limit, "client") for n in range(5)]
        assert answers == [True, True, True, True, False]
        assert await one.allow(limit, "another client")
        await first.close()
        await second.close()

    asyncio.run(scenario())


def test_without_redis_the_limiter_lets_clients_through() -> None:
    """Redis down must not take the assistant down: the limiter allows (and logs a warning)."""
    from tests.servers import free_port

    async def scenario() -> None:
        windows = RedisWindows(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        assert await RateLimiter(windows).allow(Limit("x", 1), "client")
        await windows.close()

    asyncio.run(scenario())


JSON = {"Content-Type": "application/json"}


def test_the_web_servers_public_routes_are_limited_per_client() -> None:
    env = {
        "GIFTBOT_RATE_LIMIT_MESSAGES": "5",
        "GIFTBOT_RATE_LIMIT_SIGN_INS": "3",
        "GIFTBOT_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
        "GIFTBOT_DEMO_MODE": "1",
    }
    with web_server(env) as server:

        def post(path: str, body: object, address: str) -> tuple[int, object]:
            headers = {**JSON, "X-Forwarded-For": address}
            answer = server.request("POST", path, headers=headers, body=json.dumps(body).encode())
            return answer.status, json.loads(answer.text)

        mask, sign_in, other = new_client_address(), new_client_address(), new_client_address()
        assert [post("/api/mask", {"text": "hi"}, mask)[0] for _ in range(5)] == [200] * 5
        assert post("/api/mask", {"text": "hi"}, mask) == (429, {"error": RATE_LIMITED})
        assert post("/api/mask", {"text": "hi"}, other)[0] == 200

        demo = {"email": "nobody@example.com"}
        assert [post("/demo/sign-in", demo, sign_in)[0] for _ in range(3)] == [404] * 3
        assert post("/demo/sign-in", demo, sign_in) == (429, {"error": RATE_LIMITED})
        # The agent sign-in counts on its own (and is refused before its CSRF check).
        agent = {"username": "sam", "password": "wrong"}
        assert [post("/agent/sign-in", agent, sign_in)[0] for _ in range(3)] == [403] * 3
        assert post("/agent/sign-in", agent, sign_in) == (429, {"error": RATE_LIMITED})
        # The 429 carries the usual headers (the widget reads it across origins).
        headers = {**JSON, "X-Forwarded-For": mask}
        answer = server.request("POST", "/api/mask", headers=headers, body=b'{"text": "x"}')
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert answer.headers["Retry-After"] == "60"
