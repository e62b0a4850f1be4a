"""Whole conversations through the running Rasa and action servers, over the REST channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.context import repository
from bot.settings import get_settings
from bot.tokens import mint_customer_token
from bot.wallet import db, demo
from bot.wallet.repository import WalletRepository
from tests.servers import Servers


@pytest.fixture(scope="session")
def wallet() -> WalletRepository:
    repo = repository()
    db.upgrade(repo.engine)
    demo.seed(repo)
    return repo


@pytest.fixture(scope="session")
def servers(wallet: WalletRepository) -> Iterator[Servers]:
    running = Servers.start(Path(get_settings().var_dir))
    yield running
    running.stop()


def token(wallet: WalletRepository, email: str) -> str:
    customer = wallet.find_customer_by_email(email)
    assert customer is not None
    return mint_customer_token(customer.id, get_settings().token_secret)
