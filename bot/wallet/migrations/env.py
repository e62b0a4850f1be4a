"""Alembic environment: runs against the engine handed over by bot.wallet.db (or the settings)."""

from __future__ import annotations

from alembic import context

from bot.wallet.models import metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from bot.settings import get_settings
        from bot.wallet.db import make_engine

        engine = make_engine(get_settings().db_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
