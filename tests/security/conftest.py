"""Fixtures of the security tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain

from bot.settings import get_settings
from bot.wallet.repository import WalletRepository
from tests.actions.conftest import ROOT, Conversation
from tests.security.edge import REDIS_URL, redis_available, start_edge_servers
from tests.servers import Servers


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """The real domain, for running actions as the action server would (tests/actions/)."""
    return Domain.load(str(ROOT / "domain.yml")).as_dict()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def conversation(domain: dict[str, Any], wallet: WalletRepository) -> Conversation:
    return Conversation(domain)


@pytest.fixture(scope="package")
def edge_servers(wallet: WalletRepository) -> Iterator[Servers]:
    """Rasa (the project's REST and socket.io channels, real limits, rooms shared through Redis
    when Redis is there) and the action server, on the session's demo store."""
    shared_rooms = REDIS_URL if redis_available() else None
    if shared_rooms is None and os.environ.get("CI"):
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI is set)", pytrace=False)
    running = start_edge_servers(Path(get_settings().var_dir) / "edge", shared_rooms)
    running.env["GIFTBOT_SOCKETIO_REDIS_URL"] = shared_rooms or ""
    yield running
    running.stop()
