"""Alembic environment of the tracker store's own migrations (bot/rasa_ext/tracker_store.py).

Rasa creates the ``events`` table itself; these migrations only add what the project needs on
it, tracked in a version table of their own so they never mix with the wallet store's.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.rasa_ext.tracker_store import VERSION_TABLE

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Every Rasa server migrates on start: one at a time, the others then see head.
                connection.execute(text("SELECT pg_advisory_xact_lock(7350912)"))
            context.run_migrations()


run_migrations_online()
