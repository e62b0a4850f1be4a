"""Agents of the handoff console against a real database: every test runs on SQLite and PostgreSQL.

Most tests use ``agent_repo``, whose argon2id hasher has a test-sized cost; the first test uses
the production hasher.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.desk import agents
from bot.wallet.models import Agent, AgentSignInFailure
from bot.wallet.repository import WalletError, WalletRepository
from tests.conftest import fast_password_hasher
from tests.wallet.dbcheck import snapshot, sqlite_files

PASSWORD = "correct horse battery"


def stored_hash(engine: Engine, username: str) -> str:
    with Session(engine) as s:
        return str(
            s.execute(select(Agent.password_hash).where(Agent.username == username)).one()[0]
        )


def audit(repo: WalletRepository, action: str) -> list[dict[str, Any]]:
    return [entry for entry in reversed(repo.audit_log()) if entry["action"] == action]


def move_failures_back(engine: Engine, username: str, by: timedelta) -> None:
    """What the clock does in 15 minutes, done to the columns the throttle reads: the account's
    latest failure and each client's."""
    with Session(engine) as s, s.begin():
        agent = s.execute(select(Agent).where(Agent.username == username)).scalar_one()
        agent.last_failed_sign_in_at = agent.last_failed_sign_in_at - by
        for row in s.execute(
            select(AgentSignInFailure).where(AgentSignInFailure.agent_id == agent.id)
        ).scalars():
            row.last_failed_at = row.last_failed_at - by


class CountingHasher(PasswordHasher):
    """The real hasher, counting its verifications: every sign-in path must do exactly one."""

    verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


# ------------------------------------------------------------------------------ creating


def test_create_agent_keeps_only_an_argon2id_hash(repo: WalletRepository, engine: Engine) -> None:
    sam = repo.create_agent(" Sam ", PASSWORD, display_name=" Sam Lee ")
    assert (sam.username, sam.display_name) == ("sam", "Sam Lee")
    assert (sam.disabled, sam.available, sam.locked_until) == (False, False, None)
    assert sam.created_at.tzinfo is not None
    assert sam.actor == "agent:sam"

    # The production hasher: argon2id with argon2-cffi's (RFC 9106 low-memory) parameters.
    defaults = PasswordHasher()
    assert stored_hash(engine, "sam").startswith(
        f"$argon2id$v=19$m={defaults.memory_cost},t={defaults.time_cost},"
        f"p={defaults.parallelism}$"
    )
    assert repo.verify_agent_password("sam", PASSWORD) == sam

    # The password is nowhere: not in a row, not in the database file, not in a view.
    rows = repr(snapshot(engine))
    assert PASSWORD not in rows
    if engine.dialect.name == "sqlite":
        for path in sqlite_files(engine):
            assert PASSWORD.encode() not in path.read_bytes()
    assert PASSWORD not in repr(sam) and "argon2" not in repr(sam)
    [created] = audit(repo, "agent.created")
    assert (created["actor"], created["subject"]) == ("system", "sam")
    assert created["details"] == {"display_name": "Sam Lee"}


def test_usernames_are_unique_whatever_the_case(agent_repo: WalletRepository) -> None:
    repo = agent_repo
    repo.create_agent("Sam", PASSWORD)
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match="sam already exists"):
        repo.create_agent("SAM", "another long password")
    assert snapshot(repo.engine) == before
    assert repo.find_agent(" SAM ") == repo.find_agent("sam")
    assert repo.find_agent("nobody") is None


@pytest.mark.parametrize(
    ("username", "password", "display_name", "message"),
    [
        ("sam", "short1234", None, "too short"),
        ("sam", "", None, "too short"),
        ("sam", "x" * 1025, None, "too long"),
        ("sam", "aaaaaaaaaaaa", None, "repetitive"),
        ("sam", "1212121212", None, "repetitive"),
        ("sam", "my name is SAM!", None, "must not contain the username"),
        ("", PASSWORD, None, "a username has"),
        ("s", PASSWORD, None, "a username has"),
        ("sam lee", PASSWORD, None, "a username has"),
        ("-sam", PASSWORD, None, "a username has"),
        ("sam@example.com", PASSWORD, None, "a username has"),
        ("s" * 41, PASSWORD, None, "a username has"),
        ("sam", PASSWORD, "   ", "display name"),
        ("sam", PASSWORD, "Sam\nLee", "display name"),
        ("sam", PASSWORD, "S" * 201, "display name"),
    ],
)
def test_bad_agent_input_is_refused_and_writes_nothing(
    agent_repo: WalletRepository,
    username: str,
    password: str,
    display_name: str | None,
    message: str,
) -> None:
    before = snapshot(agent_repo.engine)
    with pytest.raises(WalletError, match=message) as refused:
        agent_repo.create_agent(username, password, display_name=display_name)
    assert snapshot(agent_repo.engine) == before
    assert "\n" not in str(refused.value)
    if password:
        assert password not in str(refused.value)


# ------------------------------------------------------------------- listing, disabling


def test_list_disable_and_enable_agents(agent_repo: WalletRepository) -> None:
    repo = agent_repo
    assert repo.list_agents() == []
    repo.create_agent("zoe", PASSWORD)
    sam = repo.create_agent("sam", PASSWORD, display_name="Sam Lee")
    assert [a.username for a in repo.list_agents()] == ["sam", "zoe"]
    repo.set_agent_available("sam", True)

    disabled = repo.disable_agent("SAM", actor="cli")
    assert (disabled.disabled, disabled.available) == (True, False)
    assert repo.verify_agent_password("sam", PASSWORD) is None
    before = snapshot(repo.engine)
    assert repo.disable_agent("sam", actor="cli") == disabled  # already disabled: no change
    assert snapshot(repo.engine) == before
    [entry] = audit(repo, "agent.disabled")
    assert (entry["actor"], entry["subject"]) == ("cli", "sam")

    enabled = repo.enable_agent("sam", actor="cli")
    assert (enabled.disabled, enabled.available) == (False, False)
    assert repo.verify_agent_password("sam", PASSWORD) is not None
    assert repo.find_agent("sam") == enabled
    assert enabled.id == sam.id

    for method in (repo.disable_agent, repo.enable_agent):
        before = snapshot(repo.engine)
        with pytest.raises(WalletError, match="no agent with the username nobody"):
            method("nobody")
        assert snapshot(repo.engine) == before


def test_availability(agent_repo: WalletRepository) -> None:
    repo = agent_repo
    repo.create_agent("sam", PASSWORD)
    repo.create_agent("zoe", PASSWORD)
    assert repo.available_agents() == []

    assert repo.set_agent_available("sam", True).available is True
    assert repo.set_agent_available("zoe", True).available is True
    assert [a.username for a in repo.available_agents()] == ["sam", "zoe"]
    assert repo.set_agent_available("zoe", False).available is False
    assert [a.username for a in repo.available_agents()] == ["sam"]
    entries = audit(repo, "agent.availability")
    assert [(e["actor"], e["details"]) for e in entries] == [
        ("agent:sam", {"available": True}),
        ("agent:zoe", {"available": True}),
        ("agent:zoe", {"available": False}),
    ]
    before = snapshot(repo.engine)
    repo.set_agent_available("sam", True)  # no change, nothing written
    assert snapshot(repo.engine) == before

    repo.disable_agent("sam")
    assert repo.available_agents() == []
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match="disabled"):
        repo.set_agent_available("sam", True)
    with pytest.raises(WalletError, match="no agent"):
        repo.set_agent_available("nobody", True)
    assert snapshot(repo.engine) == before


# ------------------------------------------------------------------------------- sign-in


def test_verify_agent_password(agent_repo: WalletRepository) -> None:
    repo = agent_repo
    sam = repo.create_agent("sam", PASSWORD)
    assert repo.verify_agent_password(" SAM ", PASSWORD) == sam
    assert repo.verify_agent_password("sam", PASSWORD.upper()) is None
    assert repo.verify_agent_password("sam", PASSWORD + " ") is None
    assert repo.verify_agent_password("sam", "") is None
    assert repo.verify_agent_password("nobody", PASSWORD) is None

    [signed_in] = audit(repo, "agent.signed_in")
    assert (signed_in["actor"], signed_in["subject"]) == ("agent:sam", "sam")
    failures = audit(repo, "agent.sign_in_failed")
    assert [(e["actor"], e["subject"], e["details"]) for e in failures] == [
        (
            "anonymous",
            "sam",
            {"client": "local", "failed_sign_ins": n, "account_failures": n, "locked": False},
        )
        for n in (1, 2, 3)
    ]
    # A success forgives the failures before it.
    assert repo.verify_agent_password("sam", PASSWORD) == sam
    assert PASSWORD not in repr(repo.audit_log())


def test_five_failures_lock_sign_in_for_fifteen_minutes(agent_repo: WalletRepository) -> None:
    """From one client (here the local one); tests/security/test_agent_lockout.py has the rest:
    other clients, and the account's ceiling."""
    repo = agent_repo
    repo.create_agent("sam", PASSWORD)
    for _ in range(agents.MAX_FAILED_SIGN_INS):
        assert repo.verify_agent_password("sam", "wrong password") is None
    sam = repo.find_agent("sam")
    assert sam is not None and sam.locked_until is None  # the client is locked, not the agent
    assert audit(repo, "agent.sign_in_failed")[-1]["details"] == {
        "client": "local",
        "failed_sign_ins": 5,
        "account_failures": 5,
        "locked": True,
    }

    # Locked: even the right password is refused, and refusals neither count nor extend it.
    before = snapshot(repo.engine)
    assert repo.verify_agent_password("sam", PASSWORD) is None
    assert repo.verify_agent_password("sam", "wrong password") is None
    assert snapshot(repo.engine) == before

    move_failures_back(repo.engine, "sam", timedelta(minutes=15, seconds=1))
    sam = repo.find_agent("sam")
    assert sam is not None and sam.locked_until is None
    assert repo.verify_agent_password("sam", PASSWORD) == sam


def test_failures_far_apart_do_not_add_up(agent_repo: WalletRepository) -> None:
    repo = agent_repo
    repo.create_agent("sam", PASSWORD)
    for _ in range(agents.MAX_FAILED_SIGN_INS - 1):
        repo.verify_agent_password("sam", "wrong password")
    move_failures_back(repo.engine, "sam", timedelta(minutes=16))
    for _ in range(agents.MAX_FAILED_SIGN_INS - 1):
        repo.verify_agent_password("sam", "wrong password")
    assert audit(repo, "agent.sign_in_failed")[-1]["details"]["failed_sign_ins"] == 4
    assert repo.verify_agent_password("sam", PASSWORD) is not None
    # ... and a success starts the count again.
    for _ in range(agents.MAX_FAILED_SIGN_INS - 1):
        repo.verify_agent_password("sam", "wrong password")
    assert repo.verify_agent_password("sam", PASSWORD) is not None


def test_every_refusal_checks_one_hash(
    engine: Engine, claim_code_secret: bytes, sealing_key: str
) -> None:
    """Unknown, disabled, locked and wrong take the same work, so timing tells them apart less."""
    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    repo = WalletRepository(engine, claim_code_secret, sealing_key, password_hasher=hasher)
    repo.create_agent("sam", PASSWORD)
    repo.create_agent("zoe", PASSWORD)
    repo.disable_agent("zoe")
    for _ in range(agents.MAX_FAILED_SIGN_INS):
        repo.verify_agent_password("sam", "wrong password")

    for username, password in [
        ("nobody", PASSWORD),  # unknown
        ("zoe", PASSWORD),  # disabled
        ("sam", PASSWORD),  # locked
    ]:
        hasher.verifications = 0
        assert repo.verify_agent_password(username, password) is None
        assert hasher.verifications == 1, username


def test_a_stale_hash_is_upgraded_at_sign_in(
    engine: Engine, claim_code_secret: bytes, sealing_key: str
) -> None:
    old = WalletRepository(
        engine, claim_code_secret, sealing_key, password_hasher=fast_password_hasher(1)
    )
    new = WalletRepository(
        engine, claim_code_secret, sealing_key, password_hasher=fast_password_hasher(2)
    )
    old.create_agent("sam", PASSWORD)
    first = stored_hash(engine, "sam")
    assert ",t=1," in first

    assert new.verify_agent_password("sam", "wrong password") is None
    assert stored_hash(engine, "sam") == first  # only a right password may be re-hashed
    assert new.verify_agent_password("sam", PASSWORD) is not None
    upgraded = stored_hash(engine, "sam")
    assert ",t=2," in upgraded
    assert audit(new, "agent.signed_in")[-1]["details"] == {"rehashed": True}
    assert new.verify_agent_password("sam", PASSWORD) is not None
    assert stored_hash(engine, "sam") == upgraded
    assert audit(new, "agent.signed_in")[-1]["details"] == {"rehashed": False}


def test_a_damaged_hash_matches_nothing(agent_repo: WalletRepository) -> None:
    agent_repo.create_agent("sam", PASSWORD)
    with Session(agent_repo.engine) as s, s.begin():
        s.execute(update(Agent).values(password_hash="not a hash"))
    assert agent_repo.verify_agent_password("sam", PASSWORD) is None
