"""The handoff console's side of the store: queue, taking over, notes, handing back, resolving.

Every test runs on SQLite and PostgreSQL. What an agent does is written to the audit log with the
actor ``agent:<username>``; a refused request writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.wallet import codes
from bot.wallet.models import HandoffStatus
from bot.wallet.repository import (
    ConflictError,
    CustomerView,
    VerificationMethod,
    WalletError,
    WalletRepository,
)
from tests.wallet.dbcheck import claim_codes_in_rows, snapshot

PASSWORD = "correct horse battery"
SERIAL = "1712345678901234567"
CLAIM_CODE = "AQ4T-B7XWZC-9M2P"


@pytest.fixture
def repo(agent_repo: WalletRepository) -> WalletRepository:
    """The store with two agents, Sam and Zoe."""
    agent_repo.create_agent("sam", PASSWORD, display_name="Sam Lee")
    agent_repo.create_agent("zoe", PASSWORD)
    return agent_repo


@pytest.fixture
def ann(repo: WalletRepository) -> CustomerView:
    return repo.create_customer("Ann Lee", "ann@example.com")


def request(repo: WalletRepository, conversation_id: str, **overrides: Any) -> int:
    options: dict[str, Any] = {
        "conversation_id": conversation_id,
        "reason": "shopper_asked",
        "channel": "socketio",
        "context": {"serial": "••••4567", "verification": "verified"},
    }
    options.update(overrides)
    return repo.request_handoff(**options)


def agent_entries(repo: WalletRepository, action: str) -> list[dict[str, Any]]:
    return [e for e in reversed(repo.audit_log()) if e["action"] == action]


def refused(
    repo: WalletRepository, call: Callable[[], object], error: type[WalletError], message: str
) -> None:
    """``call`` raises ``error`` with a one-line ``message`` and writes nothing."""
    before = snapshot(repo.engine)
    with pytest.raises(error, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)
    assert snapshot(repo.engine) == before


# -------------------------------------------------------------------------------- queue


def test_the_queue_shows_waiting_conversations_oldest_first(
    repo: WalletRepository, ann: CustomerView
) -> None:
    reference = repo.open_case(kind="damaged_card", conversation_id="c2", details={})
    first = request(repo, "c1", reason="scam_report", channel="rest")
    second = request(
        repo, "c2", reason="damaged_card", customer_id=ann.id, case_reference=reference
    )
    third = request(repo, "c3")

    queue = repo.waiting_handoffs()
    assert [r.id for r in queue] == [first, second, third]
    one, two, _ = queue
    assert (one.conversation_id, one.reason, one.channel) == ("c1", "scam_report", "rest")
    assert (one.signed_in, one.customer_id, one.case_reference) == (False, None, None)
    assert (two.signed_in, two.customer_id, two.case_reference) == (True, ann.id, reference)
    assert two.context == {"serial": "••••4567", "verification": "verified"}
    assert one.status == HandoffStatus.WAITING
    assert one.created_at.tzinfo is not None
    assert one.created_at <= two.created_at
    assert timedelta(0) <= one.waited() < timedelta(minutes=5)
    assert one.waited(one.created_at + timedelta(minutes=3)) == timedelta(minutes=3)

    assert [repo.queue_position(c) for c in ("c1", "c2", "c3")] == [1, 2, 3]
    assert repo.queue_position("not-waiting") is None

    repo.take_handoff(first, "sam")
    assert [r.id for r in repo.waiting_handoffs()] == [second, third]
    assert [repo.queue_position(c) for c in ("c1", "c2", "c3")] == [None, 1, 2]
    assert repo.get_handoff(first) is not None
    assert repo.get_handoff(first + second + third) is None


# ------------------------------------------------------------------------------- taking


def test_take_handoff(repo: WalletRepository) -> None:
    request_id = request(repo, "c1")
    taken = repo.take_handoff(request_id, " Sam ")
    assert (taken.status, taken.taken_by) == (HandoffStatus.TAKEN, "sam")
    assert taken.taken_at is not None and taken.taken_at >= taken.created_at
    assert taken.waited() == taken.taken_at - taken.created_at
    assert repo.open_handoff("c1") == {
        "id": request_id,
        "reason": "shopper_asked",
        "status": "taken",
        "context": taken.context,
    }
    assert [r.id for r in repo.handoffs_taken_by("sam")] == [request_id]
    assert repo.handoffs_taken_by("zoe") == []
    [entry] = agent_entries(repo, "handoff.taken")
    assert (entry["actor"], entry["subject"], entry["details"]) == (
        "agent:sam",
        "c1",
        {"request_id": request_id},
    )

    refused(repo, lambda: repo.take_handoff(request_id, "zoe"), ConflictError, "by sam")
    refused(repo, lambda: repo.take_handoff(request_id, "sam"), ConflictError, "by you")
    # The assistant asking again merges into the open request; it does not re-queue it.
    assert request(repo, "c1") == request_id
    assert repo.get_handoff(request_id) == taken


def test_take_handoff_refusals_write_nothing(repo: WalletRepository) -> None:
    request_id = request(repo, "c1")
    repo.disable_agent("zoe")
    refused(repo, lambda: repo.take_handoff(request_id, "zoe"), WalletError, "zoe is disabled")
    refused(repo, lambda: repo.take_handoff(request_id, "nobody"), WalletError, "no agent")
    refused(repo, lambda: repo.take_handoff(request_id + 1, "sam"), WalletError, "no handoff")
    assert repo.queue_position("c1") == 1


# -------------------------------------------------------------------------- handing back


def test_hand_back(repo: WalletRepository) -> None:
    request_id = request(repo, "c1")
    refused(repo, lambda: repo.hand_back(request_id, "sam"), ConflictError, "is waiting")
    repo.take_handoff(request_id, "sam")
    refused(repo, lambda: repo.hand_back(request_id, "zoe"), ConflictError, "taken by sam")
    refused(repo, lambda: repo.hand_back(request_id + 1, "sam"), WalletError, "no handoff")

    back = repo.hand_back(request_id, "sam")
    assert (back.status, back.taken_by) == (HandoffStatus.HANDED_BACK, "sam")
    assert back.closed_at is not None and back.taken_at is not None
    assert back.closed_at >= back.taken_at
    assert repo.open_handoff("c1") is None
    assert repo.handoffs_taken_by("sam") == []
    [entry] = agent_entries(repo, "handoff.handed_back")
    assert (entry["actor"], entry["subject"]) == ("agent:sam", "c1")
    refused(repo, lambda: repo.hand_back(request_id, "sam"), ConflictError, "is handed back")
    refused(repo, lambda: repo.take_handoff(request_id, "zoe"), ConflictError, "handed back")

    # The conversation may ask for a person again later: a new request, at the end of the queue.
    request(repo, "c2")
    again = request(repo, "c1")
    assert again != request_id
    assert repo.queue_position("c1") == 2


# --------------------------------------------------------------------------------- notes


def test_internal_notes(repo: WalletRepository) -> None:
    request_id = request(repo, "c1")
    repo.take_handoff(request_id, "sam")
    first = repo.add_internal_note(request_id, "sam", "  Shopper has the receipt.  ")
    second = repo.add_internal_note(
        request_id, "zoe", f"They read me the card: {SERIAL}, code {CLAIM_CODE}"
    )
    assert (first.request_id, first.author, first.text) == (
        request_id,
        "sam",
        "Shopper has the receipt.",
    )
    # A code pasted into a note is never stored; the serial keeps its last 4 digits.
    assert second.text == (
        f"They read me the card: {codes.mask_serial(SERIAL)}, code {codes.MASKED_CLAIM_CODE}"
    )
    assert repo.notes(request_id) == [first, second]
    assert repo.notes(request_id + 1) == []
    assert claim_codes_in_rows(repo.engine, [CLAIM_CODE]) == []
    assert SERIAL not in repr(snapshot(repo.engine))
    entries = agent_entries(repo, "handoff.note_added")
    assert [(e["actor"], e["details"]) for e in entries] == [
        ("agent:sam", {"request_id": request_id, "note_id": first.id}),
        ("agent:zoe", {"request_id": request_id, "note_id": second.id}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "must not be empty"), ("  \n ", "must not be empty"), ("x" * 4001, "at most 4000")],
)
def test_bad_notes_are_refused(repo: WalletRepository, text: str, message: str) -> None:
    request_id = request(repo, "c1")
    refused(repo, lambda: repo.add_internal_note(request_id, "sam", text), WalletError, message)


def test_notes_on_nothing_or_by_nobody_are_refused(repo: WalletRepository) -> None:
    request_id = request(repo, "c1")
    repo.disable_agent("zoe")
    note = "a note"
    refused(repo, lambda: repo.add_internal_note(request_id + 1, "sam", note), WalletError, "no h")
    refused(repo, lambda: repo.add_internal_note(request_id, "nobody", note), WalletError, "no a")
    refused(repo, lambda: repo.add_internal_note(request_id, "zoe", note), WalletError, "disabled")


# ----------------------------------------------------------------------------- resolving


def test_close_case(repo: WalletRepository) -> None:
    reference = repo.open_case(kind="damaged_card", conversation_id="c1", details={"a": 1})
    closed = repo.close_case(reference.lower(), "sam", f" Replacement sent for {SERIAL}. ")
    assert (closed.reference, closed.kind, closed.status) == (reference, "damaged_card", "closed")
    assert closed.resolution == f"Replacement sent for {codes.mask_serial(SERIAL)}."
    assert closed.closed_by == "agent:sam"
    assert closed.closed_at is not None and closed.closed_at >= closed.created_at
    assert closed.details == {"a": 1}
    assert repo.case_details(reference) == {
        "kind": "damaged_card",
        "status": "closed",
        "details": {"a": 1},
    }
    [entry] = agent_entries(repo, "case.closed")
    assert (entry["actor"], entry["subject"]) == ("agent:sam", reference)
    assert entry["details"] == {"resolution": closed.resolution}

    refused(repo, lambda: repo.close_case(reference, "zoe", "again"), ConflictError, "already")


def test_close_case_refusals_write_nothing(repo: WalletRepository) -> None:
    reference = repo.open_case(kind="damaged_card", conversation_id="c1", details={})
    repo.disable_agent("zoe")
    refused(repo, lambda: repo.close_case(reference, "sam", "  "), WalletError, "resolution")
    refused(repo, lambda: repo.close_case(reference, "sam", "x" * 4001), WalletError, "at most")
    refused(repo, lambda: repo.close_case("GC-NOPE0000", "sam", "done"), WalletError, "no case")
    refused(repo, lambda: repo.close_case(reference, "zoe", "done"), WalletError, "disabled")
    refused(repo, lambda: repo.close_case(reference, "nobody", "done"), WalletError, "no agent")


def test_agent_actions_are_audited_with_the_agents_name(
    repo: WalletRepository, ann: CustomerView
) -> None:
    """The resolving actions the console calls take the agent as their actor."""
    sam = repo.find_agent("sam")
    assert sam is not None
    issued = repo.issue_card(
        amount_minor=25_00,
        purchaser_email=ann.email,
        recipient_name="Ann Lee",
        recipient_email=ann.email,
    )
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None

    repo.replace_claim_code(card.id, actor=sam.actor, conversation_id="c1")
    repo.adjust_balance(ann.id, 5_00, "goodwill after a damaged card", actor=sam.actor)

    [replaced] = agent_entries(repo, "card.code_replaced")
    assert (replaced["actor"], replaced["subject"]) == ("agent:sam", card.masked_serial)
    [adjusted] = agent_entries(repo, "balance.adjusted")
    assert adjusted["actor"] == "agent:sam"
    assert adjusted["details"] == {"amount_minor": 5_00, "reason": "goodwill after a damaged card"}
    [line] = repo.ledger(ann.id)
    assert (line.kind, line.reason) == ("adjustment", "goodwill after a damaged card")


def test_the_verified_card_of_a_handoff_is_the_recorded_damaged_card_proof(
    repo: WalletRepository,
) -> None:
    """Only a damaged-card proof (all order details) that the action server recorded makes a
    card replaceable: not a balance check by order number, not a context that claims one."""
    vera = repo.create_customer("Vera Verified", "vera@example.com")
    issued = repo.issue_card(
        amount_minor=25_00,
        purchaser_email="vera@example.com",
        recipient_name="Vera Verified",
        recipient_email="vera@example.com",
    )
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    claimed = {"verification": {"card": card.masked_serial, "card_id": card.id, "by": "details"}}
    by_details = repo.request_handoff(
        conversation_id="details", reason="shopper_asked", channel="rest", context={}
    )
    by_order_number = repo.request_handoff(
        conversation_id="order-number", reason="shopper_asked", channel="rest", context={}
    )
    only_claimed = repo.request_handoff(
        conversation_id="claimed", reason="shopper_asked", channel="rest", context=claimed
    )
    repo.record_verification("details", card.id, VerificationMethod.ORDER_DETAILS, None)
    repo.record_verification("order-number", card.id, VerificationMethod.ORDER_NUMBER, vera.id)

    found = repo.handoff_verified_card(by_details)
    assert found is not None and found.serial == issued.serial
    assert repo.handoff_verified_card(by_order_number) is None
    assert repo.handoff_verified_card(only_claimed) is None
    assert repo.handoff_verified_card(10_000) is None
    proof = repo.latest_verification("order-number")
    assert proof is not None
    assert proof.summary == f"card {card.masked_serial} verified by order number"
    assert (proof.method, proof.customer_id, proof.card.id) == (
        VerificationMethod.ORDER_NUMBER,
        vera.id,
        card.id,
    )
