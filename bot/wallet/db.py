"""Engines and migrations of the wallet store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import QueuePool

from bot.private_files import private_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite files get foreign keys, WAL and a busy timeout, and their
    connections are pooled (:func:`sqlite_file_engine`); an in-memory SQLite database keeps
    SQLAlchemy's default pool (one connection per thread, which is the database).

    ``options`` go to ``create_engine`` as they are, e.g. ``pool_size`` for a server engine
    shared by more threads than the default pool holds.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": 30, **options.pop("connect_args", {})}
        if is_sqlite_file(parsed):
            # 0600 before SQLite opens it: its -wal and -shm files copy the file's mode.
            private_file(Path(str(parsed.database)))
            engine = sqlite_file_engine(url, future=True, connect_args=connect_args, **options)
        else:
            engine = create_engine(url, future=True, connect_args=connect_args, **options)
        # Once per DB-API connection: with the pool, once per pooled connection.
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, future=True, pool_pre_ping=True, **options)


def sqlite_file_engine(url: str | URL, **options: Any) -> Engine:
    """An engine on a SQLite file that keeps its connections open between sessions, as
    SQLAlchemy 2.0 does for a SQLite file. SQLAlchemy 1.4's default for one (``NullPool``)
    opens a connection for every session and closes it after, connect hooks included: ~11% of
    the action server's CPU under load. A pooled connection is used by one thread at a time,
    but not always by the one that opened it (worker threads), hence ``check_same_thread``.

    The wallet's engines and the Rasa tracker store's (bot/tracker_store.py) are made here.
    ``options`` go to ``create_engine``; ``connect_args`` add to the ones above."""
    options.setdefault("poolclass", QueuePool)
    connect_args = {"check_same_thread": False, **options.pop("connect_args", {})}
    return create_engine(url, connect_args=connect_args, **options)


def is_sqlite_file(url: URL) -> bool:
    """Whether a SQLite URL names a file, as SQLAlchemy 1.4's pysqlite dialect decides when it
    picks its default pool (a file: ``NullPool``; memory: ``SingletonThreadPool``)."""
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)
