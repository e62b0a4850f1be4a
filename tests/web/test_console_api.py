"""The console's API over HTTP, without a browser and without Rasa (its port has no server)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.desk.agents import MAX_FAILED_SIGN_INS
from bot.settings import get_settings
from bot.wallet import codes
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


def test_taking_while_rasa_is_down_is_undone_and_the_agent_told_why(
    agent_repo: WalletRepository, no_rasa: None
) -> None:
    agent_repo.create_agent("kim", PASSWORD)
    request_id = agent_repo.request_handoff(
        conversation_id="conv-api-down", reason="shopper_asked", channel="socketio", context={}
    )

    async def scenario(client: TestClient) -> None:
        token = await signed_in(client, "kim")
        take = await client.post(
            f"/agent/api/conversations/{request_id}/take", headers={"X-CSRF-Token": token}
        )
        assert take.status == 502
        message = (await take.json())["error"]
        assert message.startswith("The assistant could not be reached (")
        assert message.endswith(
            "so the conversation was not taken: it is back in the queue. Try again in a moment."
        )

    run(agent_repo, scenario)
    handoff = agent_repo.get_handoff(request_id)
    assert handoff is not None
    assert (handoff.status.value, handoff.taken_by, handoff.taken_at) == ("waiting", None, None)
    actions = [(e["actor"], e["action"]) for e in agent_repo.audit_log(5)]
    assert actions[:2] == [("agent:kim", "handoff.take_undone"), ("agent:kim", "handoff.taken")]


def test_a_case_is_answered_by_email_and_closed(
    agent_repo: WalletRepository, no_rasa: None
) -> None:
    agent_repo.create_agent("kim", PASSWORD, display_name="Kim Park")
    reference = agent_repo.open_case(
        kind="handoff_shopper_asked",
        conversation_id="conv-api-case",
        details={"serial": "••••4567", "last_message": "my card 1712345678901234567 is torn"},
    )
    agent_repo.add_case_contact(reference, "Cara@Example.com")
    case_url = f"/agent/api/cases/{reference}"

    async def scenario(client: TestClient) -> None:
        token = await signed_in(client, "kim")
        headers = {"X-CSRF-Token": token}
        listed = (await (await client.get("/agent/api/cases")).json())["cases"]
        (mine,) = [c for c in listed if c["reference"] == reference]
        assert mine["contact_email"] == codes.mask_email("cara@example.com")
        assert mine["last_message"] == "my card ••••4567 is torn"
        # Bad input changes nothing.
        empty = await client.post(f"{case_url}/reply", json={"text": "  "}, headers=headers)
        assert empty.status == 400
        sent = await client.post(
            f"{case_url}/reply",
            json={"text": "We sent a new card, code AQ4T-B7XWZC-9M2P is void."},
            headers=headers,
        )
        assert sent.status == 200
        note = await client.post(f"{case_url}/notes", json={"text": "called"}, headers=headers)
        history = (await note.json())["case"]["history"]
        assert [(h["kind"], h["author"]) for h in history] == [
            ("email", "agent:kim"),
            ("note", "agent:kim"),
        ]
        assert codes.MASKED_CLAIM_CODE in history[0]["text"]
        closed = await client.post(
            f"{case_url}/close", json={"resolution": "card replaced"}, headers=headers
        )
        assert (await closed.json())["case"]["status"] == "closed"
        again = await client.post(f"{case_url}/reply", json={"text": "hi"}, headers=headers)
        assert again.status == 409
        listed = (await (await client.get("/agent/api/cases")).json())["cases"]
        assert reference not in [c["reference"] for c in listed]

    run(agent_repo, scenario)
    (email,) = agent_repo.outbox("cara@example.com")
    assert email.subject == f"Your gift card support case {reference}"
    assert email.body == (
        "Hello,\n\n"
        f"We sent a new card, code {codes.MASKED_CLAIM_CODE} is void.\n\n"
        "Kim Park\nGift card support\n\n"
        f"Case {reference}: quote it if you write back or chat with us again.\n"
    )
    actions = [(e["actor"], e["action"], e["subject"]) for e in agent_repo.audit_log(4)]
    assert actions[:3] == [
        ("agent:kim", "case.closed", reference),
        ("agent:kim", "case.note_added", reference),
        ("agent:kim", "case.email_sent", reference),
    ]
