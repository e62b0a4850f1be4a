"""The tracker store of the scaled topology: the project's redacting SQL tracker store, with an
engine that survives a database restart and the indexes its queries need.

Rasa 3.6.21's ``SQLTrackerStore.__init__`` (rasa/core/tracker_store.py) builds its engine with
``sa.create_engine(url, **create_engine_kwargs(url))``: no ``pool_pre_ping``, so after a
PostgreSQL restart every pooled connection is dead and each Rasa server's next turns fail into
``FailSafeTrackerStore``'s in-memory fallback (a conversation that forgets its slots), and no
connect timeout, so an unreachable server holds a turn for as long as TCP tries. The engine is
swapped here, the one place this is changed, and a read or write that lost its connection is
tried again for a few seconds before Rasa's fallback takes over (tested in
tests/rasa_ext/test_tracker_engine.py and, for an outage, tests/scale/test_faults.py).

Its ``_event_query`` runs several times a turn (retrieve, the broker's diff, counting what is
new on save) and Rasa indexes only ``sender_id``: the project's own migrations
(``tracker_migrations/``, version table ``giftbot_tracker_migrations``) add what it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.rasa_ext import inbox
from bot.tracker_store import RedactingSQLTrackerStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "tracker_migrations"
VERSION_TABLE = "giftbot_tracker_migrations"
CONNECT_TIMEOUT_SECONDS = 5
"""A connection attempt to an unreachable PostgreSQL gives up after this long."""
RETRY_PAUSES_SECONDS = (0.5, 1.0, 2.0)
"""A read or write that lost its connection is tried again after each pause: a PostgreSQL
restart or fail-over shorter than their sum costs the turn a few seconds, not its context."""


class ResilientSQLTrackerStore(RedactingSQLTrackerStore):
    """Selected in deploy/endpoints.scaled.yml (``url``: ``GIFTBOT_TRACKER_DB_URL``)."""

    engine: Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine.dispose()
        self.engine = resilient_engine(self.engine.url)
        self.sessionmaker = sessionmaker(bind=self.engine)
        upgrade(self.engine)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        return await _retrying(super().retrieve, sender_id)

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        return await _retrying(super().retrieve_full_tracker, conversation_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        # One transaction: a failed save stored nothing, so trying again stores it once (its
        # events may reach the broker twice: at least once is what the broker promises).
        await _retrying(super().save, tracker)


async def _retrying(operation: Callable[[T], Awaitable[Any]], argument: T) -> Any:
    """``operation(argument)``, tried again while the database is unreachable; after the last
    pause the error goes to Rasa's FailSafeTrackerStore, which falls back to memory."""
    for pause in (*RETRY_PAUSES_SECONDS, None):
        try:
            return await operation(argument)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            if pause is None:
                raise
            logger.warning(
                "Tracker store unreachable (%s); trying again in %s s", type(error).__name__, pause
            )
            await asyncio.sleep(pause)


def resilient_engine(url: Any) -> Engine:
    """Rasa's engine for ``url``, plus a liveness check of each pooled connection before use,
    a connect timeout and TCP keepalives (PostgreSQL)."""
    kwargs = create_engine_kwargs(url)
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            **kwargs.get("connect_args", {}),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 2,
        }
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the ``events`` table's indexes up to date (idempotent; servers may run it at once)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    command.upgrade(config, revision)


def prepare(url: str) -> None:
    """Create Rasa's ``events`` table, the project's indexes and the inbox table
    (bot/rasa_ext/inbox.py) before any Rasa server starts,
    so that servers starting together do not race to create them."""
    engine = resilient_engine(url)
    try:
        SQLTrackerStore.Base.metadata.create_all(engine)
        upgrade(engine)
        inbox.create_table(engine)
    finally:
        engine.dispose()
