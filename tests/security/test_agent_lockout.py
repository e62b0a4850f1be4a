"""Finding 7 (agent sign-in): failures lock the client that made them, not the agent.

Five wrong passwords used to lock ``sam`` out for everyone; now they lock out the address
(or IPv6 /64) they came from, and a much higher ceiling per account bounds a guesser spread
over many addresses. On SQLite and PostgreSQL (``agent_repo``), then through the console's
sign-in over HTTP with the client address from the trusted proxy header.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import agents
from bot.settings import get_edge_settings, get_settings
from bot.wallet.models import Agent, AgentSignInFailure
from bot.wallet.repository import WalletRepository
from bot.web.app import create_app
from bot.web.config import WebConfig

PASSWORD = "correct horse battery"
WRONG = "wrong password 1"
STRANGER, AGENT_HOME = "198.51.100.7", "203.0.113.5"
FAILED = {"error": "Wrong username or password, or too many attempts"}


def _age_failures(repo: WalletRepository, by: timedelta) -> None:
    """What the clock does: every recorded failure becomes ``by`` older (computed here, since
    SQLite has no date arithmetic)."""
    with Session(repo.engine) as s, s.begin():
        for row in s.execute(select(AgentSignInFailure)).scalars():
            row.last_failed_at = row.last_failed_at - by
        for agent in s.execute(select(Agent)).scalars():
            if agent.last_failed_sign_in_at is not None:
                agent.last_failed_sign_in_at = agent.last_failed_sign_in_at - by


def test_a_stranger_cannot_lock_an_agent_out(agent_repo: WalletRepository) -> None:
    sam = agent_repo.create_agent("sam", PASSWORD)
    for _ in range(agents.MAX_FAILED_SIGN_INS + 3):
        assert agent_repo.verify_agent_password("sam", WRONG, STRANGER) is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, AGENT_HOME) == sam
    # The stranger is locked out, even with the right password.
    assert agent_repo.verify_agent_password("sam", PASSWORD, STRANGER) is None
    refusals = [e for e in agent_repo.audit_log(100) if e["action"] == "agent.sign_in_failed"]
    assert len(refusals) == agents.MAX_FAILED_SIGN_INS  # what is refused unchecked is not counted
    assert refusals[0]["details"] == {
        "client": STRANGER,
        "failed_sign_ins": agents.MAX_FAILED_SIGN_INS,
        "account_failures": agents.MAX_FAILED_SIGN_INS,
        "locked": True,
    }


def test_the_same_address_is_throttled_until_the_window_passes(
    agent_repo: WalletRepository,
) -> None:
    sam = agent_repo.create_agent("sam", PASSWORD)
    for _ in range(agents.MAX_FAILED_SIGN_INS):
        assert agent_repo.verify_agent_password("sam", WRONG, STRANGER) is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, STRANGER) is None
    _age_failures(agent_repo, agents.SIGN_IN_LOCKOUT - timedelta(seconds=30))
    assert agent_repo.verify_agent_password("sam", PASSWORD, STRANGER) is None
    _age_failures(agent_repo, timedelta(seconds=31))
    assert agent_repo.verify_agent_password("sam", PASSWORD, STRANGER) == sam
    # Signing in forgives that client: it has five tries again.
    for _ in range(agents.MAX_FAILED_SIGN_INS - 1):
        assert agent_repo.verify_agent_password("sam", WRONG, STRANGER) is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, STRANGER) == sam


def test_an_ipv6_client_is_its_slash_64(agent_repo: WalletRepository) -> None:
    sam = agent_repo.create_agent("sam", PASSWORD)
    for host in range(1, agents.MAX_FAILED_SIGN_INS + 1):
        assert agent_repo.verify_agent_password("sam", WRONG, f"2001:db8:0:7::{host:x}") is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, "2001:db8:0:7::99") is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, "2001:db8:0:8::1") == sam


def test_the_account_ceiling_stops_guessing_spread_over_many_addresses(
    agent_repo: WalletRepository,
) -> None:
    agent_repo.create_agent("sam", PASSWORD)
    per_client = agents.MAX_FAILED_SIGN_INS
    clients = [
        f"198.51.100.{n}" for n in range(agents.MAX_FAILED_SIGN_INS_PER_ACCOUNT // per_client)
    ]
    assert len(clients) >= 10  # locking an agent out takes many addresses
    for client in clients:
        for _ in range(per_client):
            assert agent_repo.verify_agent_password("sam", WRONG, client) is None
    sam = agent_repo.find_agent("sam")
    assert sam is not None and sam.locked_until is not None
    assert agent_repo.verify_agent_password("sam", PASSWORD, "192.0.2.200") is None
    _age_failures(agent_repo, agents.SIGN_IN_LOCKOUT + timedelta(seconds=1))
    assert agent_repo.verify_agent_password("sam", PASSWORD, "192.0.2.200") is not None


def test_below_the_ceiling_the_account_is_not_locked(agent_repo: WalletRepository) -> None:
    """A few clients' worth of failures (a stranger or two) leave the agent's own sign-in be."""
    sam = agent_repo.create_agent("sam", PASSWORD)
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        for _ in range(agents.MAX_FAILED_SIGN_INS):
            agent_repo.verify_agent_password("sam", WRONG, client)
    found = agent_repo.find_agent("sam")
    assert found is not None and found.locked_until is None
    assert agent_repo.verify_agent_password("sam", PASSWORD, AGENT_HOME) == sam


def test_the_console_throttles_by_the_client_address(
    agent_repo: WalletRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP: strangers (as the trusted proxy reports them) cannot lock the agent out, and
    every refusal reads the same."""
    agent_repo.create_agent("kim", PASSWORD)
    monkeypatch.setenv("GIFTBOT_TRUSTED_PROXY_HEADER", "X-Forwarded-For")
    get_settings.cache_clear()
    get_edge_settings.cache_clear()

    async def scenario() -> None:
        async with TestClient(TestServer(create_app(WebConfig.from_env(), agent_repo))) as client:
            page = await (await client.get("/agent")).text()
            found = re.search(r'name="csrf-token" content="([^"]+)"', page)
            assert found

            async def attempt(address: str, password: str) -> tuple[int, object]:
                response = await client.post(
                    "/agent/sign-in",
                    json={"username": "kim", "password": password},
                    headers={"X-CSRF-Token": found.group(1), "X-Forwarded-For": address},
                )
                return response.status, await response.json()

            for _ in range(agents.MAX_FAILED_SIGN_INS):
                assert await attempt(STRANGER, WRONG) == (401, FAILED)
            assert await attempt(STRANGER, PASSWORD) == (401, FAILED)  # throttled: same words
            status, body = await attempt(AGENT_HOME, PASSWORD)
            assert status == 200 and body["agent"]["username"] == "kim"  # type: ignore[index]

    try:
        asyncio.run(scenario())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        get_edge_settings.cache_clear()
