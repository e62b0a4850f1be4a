"""Shared fixtures. The wallet store fixtures run every test on SQLite and on PostgreSQL.

PostgreSQL comes from ``GIFTBOT_TEST_PG_URL``; each test gets a schema of its own, built only by
the Alembic migrations and dropped afterwards. Without a reachable server the PostgreSQL tests
are skipped, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot.settings import get_settings
from bot.wallet import db
from bot.wallet.repository import WalletRepository
from tests.channels.platforms import Platforms
from tests.servers import Servers

PG_URL = os.environ.get("GIFTBOT_TEST_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"

# No deadline: the suite makes no timed assertions, and a loaded CI machine must not fail it.
settings.register_profile("giftbot", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "giftbot"))

_saved_environ: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Point the settings at a throw-away var dir before anything reads them.

    Done here rather than in a fixture so that code reading the settings at import time (during
    collection) never sees, or writes to, the developer's ``var/`` or database.
    """
    var_dir = Path(tempfile.mkdtemp(prefix="giftbot-test-var-"))
    for name, value in {
        "GIFTBOT_VAR_DIR": str(var_dir),
        "GIFTBOT_DB_URL": f"sqlite:///{var_dir / 'wallet.db'}",
        # The suite is one client (127.0.0.1) far faster than any shopper: the per-client
        # limits are tested with their real values by tests/security/ (servers of its own).
        "GIFTBOT_RATE_LIMIT_MESSAGES": "100000",
        "GIFTBOT_RATE_LIMIT_CONNECTS": "100000",
        "GIFTBOT_RATE_LIMIT_SIGN_INS": "100000",
    }.items():
        _saved_environ[name] = os.environ.get(name)
        os.environ[name] = value
    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    var_dir = os.environ.get("GIFTBOT_VAR_DIR")
    for name, value in _saved_environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    if var_dir and Path(var_dir).name.startswith("giftbot-test-var-"):
        shutil.rmtree(var_dir, ignore_errors=True)


# ------------------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server's URL, once it has answered; skip (fail under CI) when it does not."""
    engine = create_engine(PG_URL, future=True, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        reason = (
            f"PostgreSQL is not reachable at {make_url(PG_URL).render_as_string()} "
            f"(set GIFTBOT_TEST_PG_URL): {str(exc).strip().splitlines()[0]}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema of their own."""
    schema = f"giftbot_test_{secrets.token_hex(6)}"
    admin = create_engine(pg_url, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# ---------------------------------------------------------------------------- wallet store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on each backend: a SQLite file, a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wallet.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def empty_engine(backend_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no schema yet)."""
    engine = db.make_engine(backend_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An engine on a database whose schema the migrations created (and nothing else)."""
    db.upgrade(empty_engine)
    return empty_engine


@pytest.fixture
def claim_code_secret() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def sealing_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def repo(engine: Engine, claim_code_secret: bytes, sealing_key: str) -> WalletRepository:
    """The wallet repository on a migrated database, with secrets of its own."""
    return WalletRepository(engine, claim_code_secret, sealing_key)


def fast_password_hasher(time_cost: int = 1) -> PasswordHasher:
    """argon2id at a test-sized cost: the same algorithm and code paths, a tiny fraction of the
    production work (64 MiB and three passes per hash), so tests can make many agents."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


@pytest.fixture
def agent_repo(engine: Engine, claim_code_secret: bytes, sealing_key: str) -> WalletRepository:
    """The wallet repository on a migrated database, with a fast password hasher."""
    return WalletRepository(
        engine, claim_code_secret, sealing_key, password_hasher=fast_password_hasher()
    )


# ------------------------------------------------------------- the session's demo store


@pytest.fixture(scope="session")
def wallet() -> Iterator[WalletRepository]:
    """The store the actions and servers of this session use, with the demo data loaded."""
    from actions.context import repository
    from bot.wallet import demo

    repository.cache_clear()
    repo = repository()
    db.upgrade(repo.engine)
    demo.seed(repo)
    yield repo
    repository.cache_clear()


@pytest.fixture(scope="session")
def platforms() -> Platforms:
    """The messaging platforms' stand-ins (down until tests/channels brings them up)."""
    return Platforms()


@pytest.fixture(scope="session")
def servers(wallet: WalletRepository, platforms: Platforms) -> Iterator[Servers]:
    """The real action server and Rasa server (REST, socket.io, HTTP API with a token, every
    messaging channel), on the session's store: shared by the conversation, browser and channel
    tests (one Rasa start fewer than a server of their own each)."""
    running = Servers.start(Path(get_settings().var_dir), extra_env=platforms.env())
    yield running
    running.stop()


@contextmanager
def agents_available(wallet: WalletRepository, available: bool) -> Iterator[None]:
    """Within the block, the demo agent is (or every agent is not) available for handoffs."""
    from bot.wallet import demo

    before = {agent.username for agent in wallet.available_agents()}
    enabled = [agent.username for agent in wallet.list_agents() if not agent.disabled]
    for username in enabled:
        wallet.set_agent_available(username, False)
    if available:
        wallet.set_agent_available(demo.DEMO_AGENT[0], True)
    try:
        yield
    finally:
        for username in enabled:
            wallet.set_agent_available(username, username in before)


def token_for(wallet: WalletRepository, email: str) -> str:
    """A store-signed customer token for a customer of the session's store."""
    from bot.tokens import mint_customer_token

    customer = wallet.find_customer_by_email(email)
    assert customer is not None
    return mint_customer_token(customer.id, get_settings().token_secret)
