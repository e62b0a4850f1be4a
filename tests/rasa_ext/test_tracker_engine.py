"""The scaled tracker store on PostgreSQL: its connections survive a server restart, its indexes
come from its own migrations, and it still stores no claim code."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_ext.tracker_store import VERSION_TABLE, ResilientSQLTrackerStore, prepare
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres
CODE = "AQ4T-B7XWZC-9M2P"


def _tracker(sender: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, [])
    tracker.update(UserUttered(f"my code is {CODE}", intent={"name": "inform"}))
    return tracker


def _drop_connections(pg_url: str) -> int:
    """What a PostgreSQL restart does to a pool: every connection of the stores dies."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'tracker-test'"
            )
        ).scalar()
    admin.dispose()
    return int(killed or 0)


def _with_app_name(url: str) -> str:
    return (
        sa.engine.make_url(url)
        .update_query_dict({"application_name": "tracker-test"})
        .render_as_string(hide_password=False)
    )


def test_a_turn_after_the_connections_died_still_reads_the_tracker(
    pg_url: str, pg_schema_url: str
) -> None:
    url = _with_app_name(pg_schema_url)
    store = ResilientSQLTrackerStore(Domain.empty(), host=url)
    plain = SQLTrackerStore(Domain.empty(), host=url)  # Rasa 3.6.21's own engine, for contrast
    try:
        asyncio.run(store.save(_tracker("ann")))
        assert asyncio.run(store.retrieve("ann")) is not None
        assert asyncio.run(plain.retrieve("ann")) is not None  # both pools hold a connection
        assert _drop_connections(pg_url) >= 2
        with pytest.raises(sa.exc.OperationalError):
            asyncio.run(plain.retrieve("ann"))  # what each Rasa server met after a restart
        tracker = asyncio.run(store.retrieve("ann"))
        assert tracker is not None and tracker.latest_message is not None
        assert CODE not in tracker.latest_message.text  # still the redacting store
    finally:
        store.engine.dispose()
        plain.engine.dispose()


def test_the_indexes_come_from_the_trackers_own_migrations(pg_schema_url: str) -> None:
    prepare(pg_schema_url)
    prepare(pg_schema_url)  # idempotent: every server start runs it
    store = ResilientSQLTrackerStore(Domain.empty(), host=pg_schema_url)
    try:
        inspector = sa.inspect(store.engine)
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("events")}
        assert indexes["ix_events_sender_type_timestamp"] == ["sender_id", "type_name", "timestamp"]
        assert indexes["ix_events_sender_id_id"] == ["sender_id", "id"]
        with store.engine.connect() as connection:
            versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
            assert [v for (v,) in versions] == ["0001"]
    finally:
        store.engine.dispose()


def test_a_short_outage_costs_the_turn_seconds_not_its_tracker(pg_schema_url: str) -> None:
    """PostgreSQL gone for a second (a restart, a fail-over): the read waits and succeeds,
    where Rasa's store failed at once into the in-memory fallback."""
    url = sa.engine.make_url(pg_schema_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    store = ResilientSQLTrackerStore(Domain.empty(), host=via_proxy)
    try:
        asyncio.run(store.save(_tracker("ben")))

        async def read_through_an_outage() -> DialogueStateTracker | None:
            proxy.cut()
            asyncio.get_running_loop().call_later(1.0, proxy.restore)
            return await store.retrieve("ben")

        tracker = asyncio.run(read_through_an_outage())
        assert tracker is not None and tracker.latest_message is not None
    finally:
        store.engine.dispose()
        proxy.cut()
