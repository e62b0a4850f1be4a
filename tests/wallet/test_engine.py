"""The wallet's SQLite engines (bot.wallet.db.make_engine): a file's connections are pooled and
set up once each, foreign keys on in every session, usable from any thread; an in-memory
database keeps SQLAlchemy's default pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

from bot.wallet import db
from bot.wallet.models import Customer

SESSIONS = 5


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated wallet store in a SQLite file."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'wallet.db'}")
    db.upgrade(engine)
    engine.dispose()  # the migration's connections are not counted below
    yield engine
    engine.dispose()


def count_connects(engine: Engine) -> list[Any]:
    """The DB-API connections ``engine`` opens from now on, in order."""
    opened: list[Any] = []
    event.listen(
        engine, "connect", lambda dbapi_connection, _record: opened.append(dbapi_connection)
    )
    return opened


def foreign_keys(session: Session) -> int:
    return int(session.execute(text("PRAGMA foreign_keys")).scalar_one())


def test_a_file_keeps_one_connection_with_foreign_keys_for_every_session(
    sqlite_engine: Engine,
) -> None:
    opened = count_connects(sqlite_engine)
    seen = []
    for _ in range(SESSIONS):
        with Session(sqlite_engine) as s, s.begin():
            seen.append((foreign_keys(s), s.connection().connection.dbapi_connection))
    assert len(opened) == 1
    assert seen == [(1, opened[0])] * SESSIONS


def test_two_threads_write_at_once_and_their_connections_serve_any_thread(
    sqlite_engine: Engine,
) -> None:
    opened = count_connects(sqlite_engine)
    both_in_a_session = threading.Barrier(2)
    found: dict[str, int] = {}
    errors: list[BaseException] = []

    def shopper(name: str) -> None:
        try:
            with Session(sqlite_engine) as s, s.begin():
                found[name] = foreign_keys(s)
                # Both threads hold a connection of their own before either writes.
                both_in_a_session.wait(timeout=30)
                s.add(Customer(name=name, email=f"{name}@example.com"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=shopper, args=(name,)) for name in ("ann", "ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert found == {"ann": 1, "ben": 1}

    # The two connections the threads opened now serve this thread, foreign keys still on.
    for _ in range(SESSIONS):
        with Session(sqlite_engine) as s, s.begin():
            assert foreign_keys(s) == 1
            emails = list(s.execute(select(Customer.email).order_by(Customer.email)).scalars())
            assert emails == ["ann@example.com", "ben@example.com"]
    assert len(opened) == 2


def test_options_reach_the_pool(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'wallet.db'}", pool_size=2, max_overflow=0)
    assert engine.pool.size() == 2  # SQLAlchemy 1.4's NullPool refused both options
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_keeps_its_one_connection_per_thread(url: str) -> None:
    """SQLAlchemy 1.4's default for memory: the connection is the database, so it stays."""
    engine = db.make_engine(url)
    assert isinstance(engine.pool, SingletonThreadPool)
    db.upgrade(engine)
    with Session(engine) as s, s.begin():
        assert foreign_keys(s) == 1
        s.add(Customer(name="Ann Lee", email="ann@example.com"))
    with Session(engine) as s:
        assert list(s.execute(select(Customer.email)).scalars()) == ["ann@example.com"]
    engine.dispose()
