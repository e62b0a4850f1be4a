"""Finding 8 (low): the agent console never puts Rasa's API credential in a URL.

The console is run against a local stand-in of Rasa's HTTP API that records every request,
then the same header is tried on the real Rasa server (``servers``), which ``make run`` and
the tests start with ``--jwt-secret`` only: a token in the URL gets nothing.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from bot.settings import get_settings
from bot.wallet import db
from bot.wallet.repository import WalletRepository
from bot.web.app import create_app
from bot.web.config import WebConfig
from bot.web.rasa_api import api_token
from tests.servers import Servers

PASSWORD = "long-enough-pw-7"
KEY = secrets.token_urlsafe(32)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WalletRepository]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'wallet.db'}")
    db.upgrade(engine)
    yield WalletRepository(
        engine,
        secrets.token_bytes(32),
        get_settings().sealing_key,
        password_hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    engine.dispose()


async def _stand_in_rasa(seen: list[dict[str, Any]]) -> TestServer:
    """Rasa's two API routes the console uses, answering as Rasa does, recording each call."""

    async def record(request: web.Request) -> None:
        seen.append(
            {
                "method": request.method,
                "raw": request.raw_path,
                "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
            }
        )

    async def tracker(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(
            {"sender_id": request.match_info["id"], "events": [], "paused": False}
        )

    async def events(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"sender_id": request.match_info["id"], "events": []})

    app = web.Application()
    app.router.add_get("/conversations/{id}/tracker", tracker)
    app.router.add_post("/conversations/{id}/tracker/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def _csrf(client: TestClient) -> str:
    page = await (await client.get("/agent")).text()
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


def test_the_console_sends_rasas_credential_in_the_header_only(
    store: WalletRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_agent("kim", PASSWORD)
    handoff = store.request_handoff(
        conversation_id="conv-api-auth",
        reason="shopper_asked",
        channel="socketio",
        context={"serial": None, "verification": None},
    )
    seen: list[dict[str, Any]] = []

    async def scenario() -> None:
        rasa = await _stand_in_rasa(seen)
        monkeypatch.setenv("GIFTBOT_RASA_URL", str(rasa.make_url("")).rstrip("/"))
        monkeypatch.setenv("GIFTBOT_RASA_API_TOKEN", KEY)
        get_settings.cache_clear()
        try:
            app = create_app(WebConfig.from_env(), store)
            async with TestClient(TestServer(app)) as client:
                token = await _csrf(client)
                signed_in = await client.post(
                    "/agent/sign-in",
                    json={"username": "kim", "password": PASSWORD},
                    headers={"X-CSRF-Token": token},
                )
                assert signed_in.status == 200
                csrf = {"X-CSRF-Token": await _csrf(client)}
                base = f"/agent/api/conversations/{handoff}"
                assert (await client.get(base)).status == 200  # reads the tracker
                assert (await client.post(f"{base}/take", headers=csrf)).status == 200
                reply = await client.post(f"{base}/reply", json={"text": "Hi"}, headers=csrf)
                assert reply.status == 200
                assert (await client.post(f"{base}/hand-back", headers=csrf)).status == 200
        finally:
            await rasa.close()
            monkeypatch.undo()
            get_settings.cache_clear()

    asyncio.run(scenario())

    assert [call["method"] for call in seen] == ["GET", "POST", "POST", "POST"]
    for call in seen:
        assert "token" not in call["query"] and KEY not in call["raw"], call
        scheme, _, bearer = (call["authorization"] or "").partition(" ")
        assert scheme == "Bearer", call
        claims = jwt.decode(bearer, KEY, algorithms=["HS256"])
        assert claims["user"]["role"] == "admin"
        assert 0 < claims["exp"] - claims["iat"] <= 300  # short-lived, whatever leaks


@pytest.mark.servers
def test_rasa_takes_the_header_and_refuses_a_token_in_the_url(servers: Servers) -> None:
    tracker = f"{servers.rasa_url}/conversations/test-api-auth/tracker"
    bearer = {"Authorization": f"Bearer {api_token(servers.api_token)}"}
    assert requests.get(tracker, headers=bearer, timeout=30).status_code == 200
    assert requests.get(tracker, params={"token": servers.api_token}, timeout=30).status_code == 401
    assert requests.get(tracker, timeout=30).status_code == 401
    forged = {"Authorization": f"Bearer {api_token('not-the-key')}"}
    assert requests.get(tracker, headers=forged, timeout=30).status_code == 401
    # sanic-jwt (Rasa 3.6) allows 180 seconds of clock leeway past "exp".
    expired = {"Authorization": f"Bearer {api_token(servers.api_token, seconds=-600)}"}
    assert requests.get(tracker, headers=expired, timeout=30).status_code == 401
