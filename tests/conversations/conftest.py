"""Whole conversations through the running Rasa and action servers, over the REST channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import get_settings
from bot.wallet.repository import WalletRepository
from tests.servers import Servers


@pytest.fixture(scope="session")
def servers(wallet: WalletRepository) -> Iterator[Servers]:
    running = Servers.start(Path(get_settings().var_dir))
    yield running
    running.stop()
