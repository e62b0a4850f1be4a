"""The console's API over HTTP, without a browser and without Rasa (its port has no server)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.settings import get_settings
from bot.desk.agents import MAX_FAILED_SIGN_INS
from bot.wallet.repository import WalletRepository
from bot.web.app import create_app
from bot.web.config import WebConfig
from tests.servers import free_port

PASSWORD = "long-enough-pw-7"
FAILED = {"error": "Wrong username or password, or too many attempts"}


@pytest.fixture
def no_rasa(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIFTBOT_RASA_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def run(repo: WalletRepository, scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    config = WebConfig.from_env()

    async def main() -> None:
        async with TestClient(TestServer(create_app(config, repo))) as client:
            await scenario(client)

    asyncio.run(main())


async def csrf_of(client: TestClient) -> str:
    page = await (await client.get("/agent")).text()
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


async def signed_in(client: TestClient, username: str) -> str:
    token = await csrf_of(client)
    response = await client.post(
        "/agent/sign-in",
        json={"username": username, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 200
    return await csrf_of(client)  # a new session: a new token


def test_sign_in_failures_look_the_same_and_are_throttled(
    agent_repo: WalletRepository, no_rasa: None
) -> None:
    agent_repo.create_agent("kim", PASSWORD)

    async def scenario(client: TestClient) -> None:
        token = await csrf_of(client)

        async def attempt(username: str, password: Any) -> tuple[int, Any]:
            response = await client.post(
                "/agent/sign-in",
                json={"username": username, "password": password},
                headers={"X-CSRF-Token": token},
            )
            return response.status, await response.json()

        assert await attempt("nobody", PASSWORD) == (401, FAILED)
        assert await attempt("kim", 12345) == (401, FAILED)
        for _ in range(MAX_FAILED_SIGN_INS):
            assert await attempt("kim", "wrong-password-1") == (401, FAILED)
        assert await attempt("kim", PASSWORD) == (401, FAILED)  # locked out for now
        assert (await client.get("/agent/api/queue")).status == 401

    run(agent_repo, scenario)


def test_the_api_needs_a_session_and_its_token(agent_repo: WalletRepository, no_rasa: None) -> None:
    agent_repo.create_agent("kim", PASSWORD)
    request_id = agent_repo.request_handoff(
        conversation_id="conv-api-1",
        reason="shopper_asked",
        channel="socketio",
        context={"serial": "1712345678901234567", "verification": None},
    )

    async def scenario(client: TestClient) -> None:
        assert (await client.get("/agent/api/queue")).status == 401
        page = await (await client.get("/agent")).text()
        assert "Sign in" in page and "Reply" not in page
        token = await signed_in(client, "kim")
        queue = await (await client.get("/agent/api/queue")).json()
        (entry,) = queue["waiting"]
        assert entry["serial"] == "••••4567"  # masked even when the context was not
        take = f"/agent/api/conversations/{request_id}/take"
        assert (await client.post(take)).status == 403
        assert (await client.post(take, headers={"X-CSRF-Token": token[::-1]})).status == 403

        # Rasa is down: the agent still sees the context, and is told the transcript is missing.
        detail = await client.get(f"/agent/api/conversations/{request_id}")
        body = await detail.json()
        assert detail.status == 200 and body["transcript"] == []
        assert body["transcript_error"].startswith("The transcript could not be read")
        # Replying needs the conversation taken; signing out needs the token too.
        reply = await client.post(
            f"/agent/api/conversations/{request_id}/reply",
            json={"text": "hello"},
            headers={"X-CSRF-Token": token},
        )
        assert reply.status == 409
        assert (await client.post("/agent/sign-out")).status == 403
        out = await client.post("/agent/sign-out", headers={"X-CSRF-Token": token})
        assert out.status == 200
        assert (await client.get("/agent/api/queue")).status == 401

    run(agent_repo, scenario)
