"""The Alembic migrations: empty -> head -> base -> head and step by step, keeping the data,
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

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
    "agents",
    "handoff_notes",
    "verifications",
    "conversation_owners",
    "channel_deliveries",
    "channel_conversations",
    "channel_links",
    "channel_bindings",
    "agent_sign_in_failures",
    "case_entries",
}
CHANNEL_TABLES = {
    "channel_deliveries",
    "channel_conversations",
    "channel_links",
    "channel_bindings",
}
TABLES_0002 = (
    WALLET_TABLES
    - CHANNEL_TABLES
    - {
        "verifications",
        "conversation_owners",
        "agent_sign_in_failures",
        "case_entries",
    }
)
TABLES_0001 = TABLES_0002 - {"agents", "handoff_notes"}


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


def _insert_request(engine: Engine, conversation_id: str, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO handoff_requests (conversation_id, reason, channel, context, status,"
                " created_at) VALUES (:c, 'shopper_asked', 'rest', '{}', :s, CURRENT_TIMESTAMP)"
            ),
            {"c": conversation_id, "s": status},
        )


def _requests(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return sorted(
            tuple(row)
            for row in connection.execute(
                text("SELECT conversation_id, status FROM handoff_requests")
            )
        )


def test_0001_to_0002_and_back_keeps_the_data(
    empty_engine: Engine, claim_code_secret: bytes, sealing_key: str
) -> None:
    engine = empty_engine
    db.upgrade(engine, "0001")
    assert revision(engine) == "0001"
    assert tables(engine) == TABLES_0001 | {"alembic_version"}
    _insert_request(engine, "c1", "waiting")
    _insert_request(engine, "c2", "taken")

    db.upgrade(engine, "0002")
    assert revision(engine) == "0002"
    assert tables(engine) == TABLES_0002 | {"alembic_version"}
    assert _requests(engine) == [("c1", "waiting"), ("c2", "taken")]

    # SQLite's batch mode copied handoff_requests: the "one open request" index must still be
    # partial, i.e. refuse a second open request but allow any number of finished ones.
    with pytest.raises(IntegrityError):
        _insert_request(engine, "c1", "taken")
    _insert_request(engine, "c3", "handed_back")
    _insert_request(engine, "c3", "handed_back")
    _insert_request(engine, "c3", "waiting")
    # The new check refuses a status the console does not know.
    with pytest.raises(IntegrityError):
        _insert_request(engine, "c4", "lost")

    # The repository speaks the head revision (the models); the data made above survives.
    db.upgrade(engine)
    repo = WalletRepository(engine, claim_code_secret, sealing_key)
    repo.create_agent("sam", "correct horse battery")
    request_id = repo.waiting_handoffs()[0].id
    repo.take_handoff(request_id, "sam")
    repo.add_internal_note(request_id, "sam", "called the shopper back")
    case = repo.open_case(kind="damaged_card", conversation_id="c5", details={})
    repo.request_handoff(
        conversation_id="c5", reason="damaged_card", channel="rest", context={}, case_reference=case
    )
    repo.close_case(case, "sam", "replacement sent")

    db.downgrade(engine, "0001")
    assert revision(engine) == "0001"
    assert tables(engine) == TABLES_0001 | {"alembic_version"}
    assert len(_requests(engine)) == 6
    with pytest.raises(IntegrityError):
        _insert_request(engine, "c2", "waiting")

    db.downgrade(engine, "base")
    assert tables(engine) - {"alembic_version"} == set()
    db.upgrade(engine)
    assert revision(engine) == head(engine)
    assert tables(engine) == WALLET_TABLES | {"alembic_version"}
