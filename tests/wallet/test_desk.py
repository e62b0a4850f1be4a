"""The support desk's queries (bot.desk.repository): presence, agents going away, cases.

Every test runs on SQLite and PostgreSQL. What the desk does on its own is audited as
``system``; what an agent does, as ``agent:<username>``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.wallet.models import Agent, HandoffStatus, utcnow
from bot.wallet.repository import ConflictError, WalletError, WalletRepository

PASSWORD = "correct horse battery"


@pytest.fixture
def repo(agent_repo: WalletRepository) -> WalletRepository:
    agent_repo.create_agent("sam", PASSWORD, display_name="Sam Lee")
    agent_repo.create_agent("zoe", PASSWORD)
    return agent_repo


def request(repo: WalletRepository, conversation_id: str, **context: object) -> int:
    return repo.request_handoff(
        conversation_id=conversation_id, reason="shopper_asked", channel="rest", context=context
    )


def lapse(repo: WalletRepository, username: str) -> None:
    """As if the agent's console had stopped beating a minute ago."""
    with repo.engine.begin() as connection:
        connection.execute(
            update(Agent)
            .where(Agent.username == username)
            .values(present_until=utcnow() - timedelta(minutes=1))
        )


def test_an_agent_is_present_only_while_the_console_beats(repo: WalletRepository) -> None:
    lease = timedelta(seconds=30)
    assert repo.set_agent_available("sam", True, lease).available
    assert [a.username for a in repo.available_agents()] == ["sam"]
    assert repo.lapsed_agents() == []
    lapse(repo, "sam")
    assert repo.available_agents() == []  # at once, before any sweep
    assert repo.find_agent("sam").available is False
    assert repo.lapsed_agents() == ["sam"]
    assert repo.lapsed_agents() == []  # reported once
    assert repo.find_agent("sam").available is False
    assert repo.agent_heartbeat("sam", lease).available is False  # back, but not available
    # Without a lease (set directly in the store) availability holds as set.
    repo.set_agent_available("zoe", True)
    assert [a.username for a in repo.available_agents()] == ["zoe"]
    entries = [(e["actor"], e["action"]) for e in repo.audit_log(10)]
    assert ("agent:sam", "agent.away") in entries


def test_an_agent_who_goes_hands_their_chats_back_with_notes(repo: WalletRepository) -> None:
    first, second, others = request(repo, "c1"), request(repo, "c2"), request(repo, "c3")
    repo.take_handoff(first, "sam")
    repo.take_handoff(second, "sam")
    repo.take_handoff(others, "zoe")
    repo.add_internal_note(first, "sam", "refund promised")

    returned = repo.return_handoffs_of("sam", "signed out")
    assert [h.id for h in returned] == [first, second]
    assert all(h.status == HandoffStatus.WAITING and h.taken_by is None for h in returned)
    assert [h.id for h in repo.waiting_handoffs()] == [first, second]
    assert [n.text for n in repo.notes(first)] == ["refund promised"]
    assert repo.get_handoff(others).taken_by == "zoe"
    assert repo.return_handoffs_of("sam", "signed out") == []
    assert [(e["action"], e["details"]["why"]) for e in repo.audit_log(2)] == [
        ("handoff.returned_to_queue", "signed out"),
        ("handoff.returned_to_queue", "signed out"),
    ]


def test_disabled_agents_holding_chats_are_found(repo: WalletRepository) -> None:
    repo.take_handoff(request(repo, "c1"), "zoe")
    assert repo.disabled_agents_holding_chats() == []
    repo.disable_agent("zoe")
    assert repo.disabled_agents_holding_chats() == ["zoe"]
    repo.return_handoffs_of("zoe", "disabled")
    assert repo.disabled_agents_holding_chats() == []


def test_a_take_the_assistant_never_heard_of_is_undone(repo: WalletRepository) -> None:
    first = request(repo, "c1")
    repo.take_handoff(first, "sam")
    undone = repo.untake_handoff(first, "sam", "assistant unreachable")
    assert (undone.status, undone.taken_by) == (HandoffStatus.WAITING, None)
    repo.take_handoff(first, "zoe")  # anyone may take it again
    assert repo.untake_handoff(first, "sam", "late").taken_by == "zoe"  # not sam's to undo


def test_with_no_agent_left_waiting_requests_become_cases(repo: WalletRepository) -> None:
    ann = repo.create_customer("Ann Lee", "ann@example.com")
    repo.set_agent_available("sam", True)
    signed_in = repo.request_handoff(
        conversation_id="c1",
        reason="form_failed",
        channel="rest",
        context={"serial": "••••4567", "last_message": "help"},
        customer_id=ann.id,
    )
    signed_out = request(repo, "c2")
    assert repo.move_waiting_to_cases() == []  # sam is there
    repo.set_agent_available("sam", False)

    moved = repo.move_waiting_to_cases()
    assert [(h.id, h.status) for h, _ in moved] == [
        (signed_in, HandoffStatus.HANDED_BACK),
        (signed_out, HandoffStatus.HANDED_BACK),
    ]
    case = repo.get_case(moved[0][1])
    assert case is not None
    assert (case.kind, case.status, case.conversation_id, case.customer_id) == (
        "handoff_form_failed",
        "open",
        "c1",
        ann.id,
    )
    assert case.details == {"serial": "••••4567", "last_message": "help"}
    assert repo.get_handoff(signed_in).case_reference == case.reference
    assert repo.waiting_handoffs() == []
    assert repo.move_waiting_to_cases() == []
    assert [c.reference for c in repo.open_cases()] == [ref for _, ref in moved]


def test_a_chat_left_unresolved_becomes_a_case(repo: WalletRepository) -> None:
    ann = repo.create_customer("Ann Lee", "ann@example.com")
    chat = repo.request_handoff(
        conversation_id="c1", reason="shopper_asked", channel="rest", context={}, customer_id=ann.id
    )
    repo.take_handoff(chat, "sam")
    repo.hand_back(chat, "sam")
    with pytest.raises(WalletError, match="what is left to do"):
        repo.follow_up_case(chat, "sam", "   ")
    reference = repo.follow_up_case(chat, "sam", "refund; card 1712345678901234567")
    case = repo.get_case(reference)
    assert case is not None and case.kind == "chat_unresolved"
    assert case.details == {
        "follow_up": "refund; card ••••4567",
        "contact_email": "ann@example.com",
    }
    assert repo.latest_case_of("c1") == case.__class__(**{**case.__dict__, "notes": ()})


def test_case_replies_need_an_address_and_an_open_case(repo: WalletRepository) -> None:
    reference = repo.open_case(kind="damaged_card", conversation_id="c1", details={})
    with pytest.raises(ConflictError, match="no contact email address"):
        repo.reply_to_case(reference, "sam", "hello")
    assert repo.outbox() == []
    repo.add_case_note(reference, "sam", "waiting for the shopper's address")
    repo.close_case(reference, "sam", "no address given")
    with pytest.raises(ConflictError, match="already closed"):
        repo.add_case_note(reference, "zoe", "late")
    case = repo.get_case(reference)
    assert case is not None
    assert [(n.kind, n.author) for n in case.notes] == [("note", "agent:sam")]
