"""The Alembic migrations: empty -> head -> base -> head, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from bot.wallet import db
from bot.wallet.models import metadata
from bot.wallet.repository import WalletRepository

WALLET_TABLES = {
    "customers",
    "orders",
    "gift_cards",
    "ledger_entries",
    "failed_attempts",
    "support_cases",
    "handoff_requests",
    "outbox",
    "audit_log",
}


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def enum_types(engine: Engine) -> set[str]:
    """PostgreSQL enum types in the engine's own schema (they outlive their tables)."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                text(
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                    " WHERE t.typtype = 'e' AND n.nspname = current_schema()"
                )
            ).scalars()
        )


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(db.alembic_config(engine)).get_current_head()


def test_upgrade_downgrade_upgrade(
    empty_engine: Engine, claim_code_secret: bytes, sealing_key: str
) -> None:
    engine = empty_engine
    postgres = engine.dialect.name == "postgresql"
    assert tables(engine) == set()

    db.upgrade(engine)
    assert tables(engine) == WALLET_TABLES | {"alembic_version"}
    assert revision(engine) == head(engine)
    if postgres:
        assert enum_types(engine) == {"card_state"}
    db.upgrade(engine)  # a second upgrade is a no-op
    assert revision(engine) == head(engine)

    db.downgrade(engine, "base")
    assert tables(engine) - {"alembic_version"} == set()
    assert revision(engine) is None
    if postgres:
        assert enum_types(engine) == set(), "the downgrade left the enum type behind"

    db.upgrade(engine)
    assert tables(engine) == WALLET_TABLES | {"alembic_version"}
    # The store works on the re-created schema.
    repo = WalletRepository(engine, claim_code_secret, sealing_key)
    customer = repo.create_customer("Ann Lee", "ann@example.com")
    assert repo.find_customer_by_email("ann@example.com") == customer


def test_migrations_match_the_models(engine: Engine) -> None:
    """Every table of models.py is created by the migrations, exactly as declared."""
    assert set(metadata.tables) == WALLET_TABLES
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
