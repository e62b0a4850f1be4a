"""Races the store must win: one credit per card, one open request per conversation, one agent
per conversation, and no more guesses at a password than the throttle allows.

Twenty threads, each holding a connection of its own, are released together by a barrier and
all do the same thing. Run on PostgreSQL (the production store) and on a SQLite file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.desk import agents
from bot.wallet import db
from bot.wallet.models import CardState, HandoffStatus, LedgerEntry
from bot.wallet.repository import (
    AgentView,
    ClaimCodeStatus,
    ConflictError,
    HandoffView,
    RedeemResult,
    WalletRepository,
)
from tests.conftest import fast_password_hasher

WORKERS = 20
ROUNDS = 5  # cards raced in a row: a lost race must not hide behind a lucky schedule


@pytest.fixture
def racing_repo(
    engine: Engine, backend_url: str, claim_code_secret: bytes, sealing_key: str
) -> Iterator[WalletRepository]:
    """The same store (``engine`` migrated it) through an engine with a connection ready for
    every worker: a pool of ``WORKERS`` on SQLite too, whose default pool holds fewer."""
    racing = db.make_engine(backend_url, pool_size=WORKERS, max_overflow=0)
    # Open every connection now, so that no worker is late because it is still connecting.
    connections = [racing.connect() for _ in range(WORKERS)]
    for connection in connections:
        connection.close()
    yield WalletRepository(
        racing, claim_code_secret, sealing_key, password_hasher=fast_password_hasher()
    )
    racing.dispose()


def race(repo: WalletRepository, claim_code: str, customer_ids: list[int]) -> list[RedeemResult]:
    """Every customer redeems ``claim_code`` at once; the results in customer order."""
    barrier = threading.Barrier(len(customer_ids))
    results: list[RedeemResult | None] = [None] * len(customer_ids)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            # The timeout only unblocks the others if a worker dies before the barrier.
            barrier.wait(timeout=120)
            results[index] = repo.redeem(claim_code, customer_ids[index], actor=f"w{index}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(customer_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def credits_for(engine: Engine, card_id: int) -> list[tuple[int, int]]:
    with Session(engine) as s:
        return [
            (row.customer_id, row.amount_minor)
            for row in s.execute(select(LedgerEntry).where(LedgerEntry.gift_card_id == card_id))
            .scalars()
            .all()
        ]


@pytest.mark.parametrize("who", ["different customers", "one customer, many tabs"])
def test_concurrent_redemptions_credit_a_card_once(racing_repo: WalletRepository, who: str) -> None:
    repo = racing_repo
    purchaser = repo.create_customer("Purchaser", "purchaser@example.com")
    if who == "different customers":
        customer_ids = [
            repo.create_customer(f"Racer {i}", f"racer{i}@example.com").id for i in range(WORKERS)
        ]
        losing_status = ClaimCodeStatus.REDEEMED_ELSEWHERE
    else:
        customer_ids = [repo.create_customer("Racer", "racer@example.com").id] * WORKERS
        losing_status = ClaimCodeStatus.REDEEMED_BY_YOU

    total = 0
    for round_ in range(ROUNDS):
        amount = 10_00 + round_
        issued = repo.issue_card(
            amount_minor=amount,
            purchaser_email=purchaser.email,
            recipient_name="Racer",
            recipient_email="racer@example.com",
        )
        results = race(repo, issued.claim_code, customer_ids)

        winners = [i for i, result in enumerate(results) if result.redeemed]
        assert len(winners) == 1, f"round {round_}: {len(winners)} workers redeemed the card"
        winner = customer_ids[winners[0]]
        assert results[winners[0]].balance_minor is not None
        for index, result in enumerate(results):
            if index != winners[0]:
                assert (result.redeemed, result.balance_minor) == (False, None)
                assert result.status == (
                    ClaimCodeStatus.REDEEMED_BY_YOU
                    if customer_ids[index] == winner
                    else losing_status
                )

        card = repo.find_card_by_serial(issued.serial)
        assert card is not None
        assert (card.state, card.redeemed_by_id) == (CardState.REDEEMED, winner)
        assert credits_for(repo.engine, card.id) == [(winner, amount)]
        total += amount

    balances = {customer_id: repo.account_balance(customer_id) for customer_id in customer_ids}
    assert sum(balances.values()) == total
    with Session(repo.engine) as s:
        assert s.execute(select(func.count(LedgerEntry.id))).scalar_one() == ROUNDS
    if who == "one customer, many tabs":
        assert balances == {customer_ids[0]: total}


def test_racing_handoff_requests_leave_one_open_request(racing_repo: WalletRepository) -> None:
    """Double clicks on "talk to a person" must not queue a conversation twice."""
    for round_ in range(ROUNDS):
        conversation_id = f"race-{round_}"
        barrier = threading.Barrier(WORKERS)
        ids: list[int] = []
        errors: list[BaseException] = []

        def worker(index: int, conversation_id: str = conversation_id) -> None:
            try:
                barrier.wait(timeout=120)
                ids.append(
                    racing_repo.request_handoff(
                        conversation_id=conversation_id,
                        reason="shopper_asked",
                        channel="rest",
                        context={f"worker_{index}": True},
                    )
                )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(ids)) == 1, ids
        request = racing_repo.open_handoff(conversation_id)
        assert request is not None and request["id"] == ids[0]


T = TypeVar("T")


def all_at_once(work: Callable[[int], T]) -> list[T | BaseException]:
    """``work(i)`` for every worker at once: its result or what it raised, in worker order."""
    barrier = threading.Barrier(WORKERS)
    outcomes: dict[int, T | BaseException] = {}

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=120)
            outcomes[index] = work(index)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == list(range(WORKERS))
    return [outcomes[i] for i in range(WORKERS)]


def test_agents_racing_to_take_a_conversation_one_wins(racing_repo: WalletRepository) -> None:
    """Twenty agents click "Take" on the same conversation: exactly one gets it."""
    repo = racing_repo
    usernames = [f"agent{i}" for i in range(WORKERS)]
    for username in usernames:
        repo.create_agent(username, "correct horse battery")
    for round_ in range(ROUNDS):
        conversation_id = f"take-{round_}"
        request_id = repo.request_handoff(
            conversation_id=conversation_id, reason="shopper_asked", channel="rest", context={}
        )
        outcomes = all_at_once(lambda i: repo.take_handoff(request_id, usernames[i]))

        winners = [i for i, o in enumerate(outcomes) if isinstance(o, HandoffView)]
        assert len(winners) == 1, f"round {round_}: {len(winners)} agents took the conversation"
        winner = usernames[winners[0]]
        losers = [o for o in outcomes if not isinstance(o, HandoffView)]
        assert all(isinstance(o, ConflictError) for o in losers), losers
        assert {str(o) for o in losers} == {f"the conversation was already taken by {winner}"}

        taken = repo.get_handoff(request_id)
        assert taken is not None
        assert (taken.status, taken.taken_by) == (HandoffStatus.TAKEN, winner)
        takes = [
            e
            for e in repo.audit_log(limit=1000)
            if e["action"] == "handoff.taken" and e["subject"] == conversation_id
        ]
        assert [e["actor"] for e in takes] == [f"agent:{winner}"]


def test_parallel_guesses_cannot_outrun_the_sign_in_throttle(
    racing_repo: WalletRepository,
) -> None:
    """Twenty wrong passwords at once from one client: five are checked, the rest refused;
    then that client is locked out (the agent is not: tests/security/test_agent_lockout.py)."""
    repo = racing_repo
    repo.create_agent("sam", "correct horse battery")
    outcomes = all_at_once(lambda i: repo.verify_agent_password("sam", f"guess number {i}"))
    assert outcomes == [None] * WORKERS

    failures = [e for e in repo.audit_log(limit=1000) if e["action"] == "agent.sign_in_failed"]
    assert len(failures) == agents.MAX_FAILED_SIGN_INS
    sam = repo.find_agent("sam")
    assert isinstance(sam, AgentView) and sam.locked_until is None
    assert repo.verify_agent_password("sam", "correct horse battery") is None
    assert repo.verify_agent_password("sam", "correct horse battery", "192.0.2.9") == sam
