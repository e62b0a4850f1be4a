"""The wallet repository against a real database: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.wallet import codes, demo
from bot.wallet.models import (
    CardState,
    FailedAttempt,
    GiftCard,
    HandoffRequest,
    OutboxEmail,
    utcnow,
)
from bot.wallet.repository import (
    ClaimCodeStatus,
    CustomerView,
    IssuedCard,
    WalletError,
    WalletRepository,
)
from tests.wallet.dbcheck import (
    claim_codes_in_bytes,
    claim_codes_in_rows,
    snapshot,
    sqlite_files,
)

DAY = timedelta(hours=24)


@pytest.fixture
def ann(repo: WalletRepository) -> CustomerView:
    return repo.create_customer("Ann Lee", "ann@example.com")


@pytest.fixture
def ben(repo: WalletRepository) -> CustomerView:
    return repo.create_customer("Ben Okafor", "ben@example.com")


def issue(repo: WalletRepository, purchaser: CustomerView, **overrides: object) -> IssuedCard:
    options: dict[str, object] = {
        "amount_minor": 50_00,
        "purchaser_email": purchaser.email,
        "recipient_name": "Ben Okafor",
        "recipient_email": "ben@example.com",
    }
    options.update(overrides)
    return repo.issue_card(**options)  # type: ignore[arg-type]


def spaced(serial: str) -> str:
    return " ".join(serial[i : i + 4] for i in range(0, len(serial), 4))


def actions(repo: WalletRepository) -> list[str]:
    return [entry["action"] for entry in repo.audit_log()]


# ------------------------------------------------------------------------------ customers


def test_create_and_find_customers(repo: WalletRepository) -> None:
    ann = repo.create_customer("  Ann Lee ", " Ann@Example.COM ")
    assert (ann.name, ann.email) == ("Ann Lee", "ann@example.com")
    ben = repo.create_customer("Ben Okafor", "ben@example.com")
    assert ben.id != ann.id

    assert repo.find_customer_by_email("ANN@example.com ") == ann
    assert repo.get_customer(ann.id) == ann
    assert repo.find_customer_by_email("nobody@example.com") is None
    assert repo.get_customer(ann.id + ben.id + 1000) is None
    assert repo.account_balance(ann.id) == 0
    assert repo.ledger(ann.id) == []
    assert actions(repo).count("customer.created") == 2


def test_duplicate_email_is_refused_and_nothing_written(
    repo: WalletRepository, ann: CustomerView
) -> None:
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match="already exists"):
        repo.create_customer("Another Ann", " ANN@example.com")
    assert snapshot(repo.engine) == before


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("", "x@example.com"),
        ("   ", "x@example.com"),
        ("X", "not-an-email"),
        ("X", "@x"),
        ("X", "x@"),
    ],
)
def test_invalid_customer_is_refused_and_nothing_written(
    repo: WalletRepository, name: str, email: str
) -> None:
    before = snapshot(repo.engine)
    with pytest.raises(WalletError):
        repo.create_customer(name, email)
    assert snapshot(repo.engine) == before


# ---------------------------------------------------------------------------------- cards


def test_issue_emailed_card_and_find_it_by_serial(
    repo: WalletRepository, ann: CustomerView
) -> None:
    issued = issue(repo, ann, recipient_email="Ben@Example.com")
    assert codes.parse_serial(issued.serial) == issued.serial
    assert codes.parse_claim_code(issued.claim_code) == issued.claim_code
    assert issued.order_number.startswith("D01-")  # delivered by email: a digital order
    assert (issued.amount_minor, issued.currency) == (50_00, "USD")

    card = repo.find_card_by_serial(spaced(issued.serial))
    assert card is not None
    assert card.serial == issued.serial
    assert (card.amount_minor, card.currency, card.state) == (50_00, "USD", CardState.ACTIVE)
    assert (card.locked, card.failed_attempts, card.display_state) == (False, 0, "active")
    assert card.order_number == issued.order_number
    assert (card.purchaser_id, card.purchaser_email, card.purchaser_name) == (
        ann.id,
        ann.email,
        ann.name,
    )
    assert (card.recipient_name, card.recipient_email) == ("Ben Okafor", "ben@example.com")
    assert card.shipping_address is None
    assert card.delivery_email == "ben@example.com"
    assert (card.redeemed_by_id, card.redeemed_by_email, card.redeemed_at) == (None, None, None)
    assert card.masked_serial == "••••" + issued.serial[-4:]
    assert "card.issued" in actions(repo)


def test_issue_shipped_card(repo: WalletRepository, ann: CustomerView) -> None:
    issued = issue(
        repo,
        ann,
        recipient_email=None,
        shipping_address=" 12 Rue des Lilas, Paris ",
        currency="EUR",
    )
    assert not issued.order_number.startswith("D01-")
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    assert card.currency == "EUR"
    assert card.shipping_address == "12 Rue des Lilas, Paris"
    assert card.recipient_email is None
    assert card.delivery_email == ann.email  # nowhere else to write to but the purchaser


def test_find_card_by_serial_unknown_and_malformed(repo: WalletRepository) -> None:
    assert repo.find_card_by_serial("1700000000000000000") is None
    with pytest.raises(codes.CodeFormatError):
        repo.find_card_by_serial("1234")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"purchaser_email": "nobody@example.com"}, "no customer"),
        ({"amount_minor": 0}, "more than zero"),
        ({"amount_minor": -5_00}, "more than zero"),
        ({"recipient_email": None}, "email or a shipping address"),
        ({"recipient_name": "  "}, "name"),
        ({"recipient_email": "ben.example.com"}, "not an email"),
    ],
)
def test_issue_card_refusals_write_nothing(
    repo: WalletRepository, ann: CustomerView, overrides: dict[str, object], message: str
) -> None:
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match=message):
        issue(repo, ann, **overrides)
    assert snapshot(repo.engine) == before


@pytest.mark.parametrize("field", ["serial", "claim_code", "order_number"])
def test_issue_card_with_a_value_in_use_is_refused(
    repo: WalletRepository, ann: CustomerView, field: str
) -> None:
    first = issue(repo, ann)
    values = {
        "serial": codes.generate_serial(),
        "claim_code": codes.generate_claim_code(),
        "order_number": codes.generate_order_number(),
    }
    values[field] = {
        "serial": first.serial,
        "claim_code": first.claim_code,
        "order_number": first.order_number,
    }[field]
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match="already in use"):
        issue(repo, ann, **values)
    assert snapshot(repo.engine) == before


def test_claim_codes_are_stored_only_as_hmac(
    repo: WalletRepository, claim_code_secret: bytes, ann: CustomerView, ben: CustomerView
) -> None:
    """Issue, redeem, fail, replace, open cases: no plain claim code anywhere, ever."""
    demo.seed(repo)
    emailed = issue(repo, ann)
    shipped = issue(repo, ann, recipient_email=None, shipping_address="1 Main St")
    redeemed = issue(repo, ann)
    assert repo.redeem(redeemed.claim_code, ben.id, actor="bot").redeemed
    card = repo.find_card_by_serial(shipped.serial)
    assert card is not None
    repo.record_failed_attempt(
        kind="claim_code", conversation_id="c1", customer_id=ben.id, card_id=card.id
    )
    replacement = repo.replace_claim_code(card.id, actor="bot", conversation_id="c1")
    new_code = _code_in(repo.render_outbox_email(replacement.outbox_id))
    reference = repo.open_case(
        kind="damaged_card", conversation_id="c1", details={"serial": card.masked_serial}
    )
    repo.request_handoff(
        conversation_id="c1",
        reason="damaged_card",
        channel="rest",
        context={},
        case_reference=reference,
    )

    plain = [emailed.claim_code, shipped.claim_code, redeemed.claim_code, new_code]
    plain += [c.claim_code for c in demo.CARDS]
    assert claim_codes_in_rows(repo.engine, plain) == []
    if repo.engine.dialect.name == "sqlite":
        repo.engine.dispose()
        assert claim_codes_in_bytes(sqlite_files(repo.engine), plain) == []

    # What is stored is the keyed hash of the code, under this store's secret.
    with Session(repo.engine) as s:
        stored = set(s.execute(select(GiftCard.claim_code_hmac)).scalars())
    for code in [emailed.claim_code, redeemed.claim_code, new_code]:
        assert codes.claim_code_hmac(code, claim_code_secret) in stored
    assert codes.claim_code_hmac(shipped.claim_code, claim_code_secret) not in stored  # replaced


def test_the_plain_text_scans_find_a_planted_code(repo: WalletRepository) -> None:
    """The scans above would see a claim code wherever it was written."""
    code = codes.generate_claim_code()
    with Session(repo.engine) as s, s.begin():
        s.add(OutboxEmail(to_address="x@example.com", subject="s", body=f"code {code.lower()}"))
    assert claim_codes_in_rows(repo.engine, [code]) != []
    if repo.engine.dialect.name == "sqlite":
        repo.engine.dispose()
        assert claim_codes_in_bytes(sqlite_files(repo.engine), [code]) != []


# ------------------------------------------------------------------------------ redemption


def test_redeem_credits_the_balance_once(
    repo: WalletRepository, ann: CustomerView, ben: CustomerView
) -> None:
    issued = issue(repo, ann)
    before = snapshot(repo.engine)
    assert repo.claim_code_status(issued.claim_code, ben.id) == ClaimCodeStatus.REDEEMABLE
    assert snapshot(repo.engine) == before, "a status check must not change anything"

    typed = codes.format_claim_code(issued.claim_code).lower()
    result = repo.redeem(typed, ben.id, actor="bot")
    assert (result.status, result.redeemed, result.balance_minor) == (
        ClaimCodeStatus.REDEEMED_BY_YOU,
        True,
        50_00,
    )
    assert result.card is not None
    assert result.card.state == CardState.REDEEMED
    assert (result.card.redeemed_by_id, result.card.redeemed_by_email) == (ben.id, ben.email)
    assert result.card.redeemed_at is not None
    assert repo.account_balance(ben.id) == 50_00
    assert repo.account_balance(ann.id) == 0
    [line] = repo.ledger(ben.id)
    assert (line.amount_minor, line.currency, line.kind) == (50_00, "USD", "redemption")
    assert line.masked_serial == codes.mask_serial(issued.serial)
    [entry] = [e for e in repo.audit_log() if e["action"] == "card.redeemed"]
    assert entry["subject"] == codes.mask_serial(issued.serial)

    # Again, by the same customer: nothing more is credited.
    again = repo.redeem(issued.claim_code, ben.id, actor="bot")
    assert (again.status, again.redeemed, again.balance_minor) == (
        ClaimCodeStatus.REDEEMED_BY_YOU,
        False,
        None,
    )
    # By another customer: it was redeemed elsewhere, and they get nothing.
    elsewhere = repo.redeem(issued.claim_code, ann.id, actor="bot")
    assert (elsewhere.status, elsewhere.redeemed) == (ClaimCodeStatus.REDEEMED_ELSEWHERE, False)
    assert repo.claim_code_status(issued.claim_code, ann.id) == ClaimCodeStatus.REDEEMED_ELSEWHERE
    assert repo.claim_code_status(issued.claim_code, None) == ClaimCodeStatus.REDEEMED_ELSEWHERE
    assert repo.claim_code_status(issued.claim_code, ben.id) == ClaimCodeStatus.REDEEMED_BY_YOU
    assert repo.account_balance(ben.id) == 50_00
    assert repo.account_balance(ann.id) == 0
    assert len(repo.ledger(ben.id)) == 1


@pytest.mark.parametrize(
    ("prepare", "status", "display_state"),
    [
        ("inactive", ClaimCodeStatus.NOT_ACTIVATED, "inactive"),
        ("cancelled", ClaimCodeStatus.CANCELLED, "cancelled"),
        ("locked", ClaimCodeStatus.LOCKED, "locked"),
        ("not_found", ClaimCodeStatus.NOT_FOUND, None),
    ],
)
def test_cards_that_cannot_be_redeemed(
    repo: WalletRepository,
    ann: CustomerView,
    ben: CustomerView,
    prepare: str,
    status: ClaimCodeStatus,
    display_state: str | None,
) -> None:
    issued = issue(
        repo, ann, state=CardState.INACTIVE if prepare == "inactive" else CardState.ACTIVE
    )
    if prepare == "cancelled":
        repo.set_card_state(issued.serial, CardState.CANCELLED, actor="agent")
    if prepare == "locked":
        repo.lock_card(issued.serial, actor="agent")
    code = codes.generate_claim_code() if prepare == "not_found" else issued.claim_code

    before = snapshot(repo.engine)
    assert repo.claim_code_status(code, ben.id) == status
    result = repo.redeem(code, ben.id, actor="bot")
    assert (result.status, result.redeemed, result.balance_minor) == (status, False, None)
    if display_state is None:
        assert result.card is None
    else:
        assert result.card is not None
        assert result.card.display_state == display_state
    assert snapshot(repo.engine) == before, "a refused redemption must not write anything"


def test_a_locked_card_keeps_its_state(repo: WalletRepository, ann: CustomerView) -> None:
    issued = issue(repo, ann)
    card = repo.lock_card(issued.serial, actor="agent")
    assert (card.locked, card.state, card.display_state) == (True, CardState.ACTIVE, "locked")


def test_activating_a_card_makes_it_redeemable(
    repo: WalletRepository, ann: CustomerView, ben: CustomerView
) -> None:
    issued = issue(repo, ann, state=CardState.INACTIVE)
    card = repo.set_card_state(issued.serial, CardState.ACTIVE, actor="store")
    assert card.state == CardState.ACTIVE
    assert repo.redeem(issued.claim_code, ben.id, actor="bot").redeemed
    with pytest.raises(WalletError, match="redeemed card"):
        repo.set_card_state(issued.serial, CardState.CANCELLED, actor="agent")


def test_a_malformed_claim_code_is_a_format_error(
    repo: WalletRepository, ben: CustomerView
) -> None:
    with pytest.raises(codes.CodeFormatError):
        repo.claim_code_status("12345", ben.id)
    with pytest.raises(codes.CodeFormatError):
        repo.redeem("not a code", ben.id, actor="bot")


# -------------------------------------------------------------------------- failed attempts


def test_record_failed_attempt_locks_the_card_at_the_threshold(
    repo: WalletRepository, ann: CustomerView, ben: CustomerView
) -> None:
    issued = issue(repo, ann)
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    for attempt in (1, 2):
        repo.record_failed_attempt(
            kind="claim_code", conversation_id="c1", card_id=card.id, lock_card_after=3
        )
        now = repo.find_card_by_serial(issued.serial)
        assert now is not None
        assert (now.failed_attempts, now.locked) == (attempt, False)
    assert "card.locked" not in actions(repo)

    repo.record_failed_attempt(
        kind="claim_code", conversation_id="c1", card_id=card.id, lock_card_after=3
    )
    locked = repo.find_card_by_serial(issued.serial)
    assert locked is not None
    assert (locked.failed_attempts, locked.locked, locked.state) == (3, True, CardState.ACTIVE)
    assert actions(repo).count("card.locked") == 1
    assert repo.redeem(issued.claim_code, ben.id, actor="bot").status == ClaimCodeStatus.LOCKED
    assert repo.account_balance(ben.id) == 0

    repo.record_failed_attempt(
        kind="claim_code", conversation_id="c1", card_id=card.id, lock_card_after=3
    )
    assert actions(repo).count("card.locked") == 1, "locked once, audited once"


def test_failed_attempts_without_a_threshold_never_lock_nor_count_toward_a_lock(
    repo: WalletRepository, ann: CustomerView
) -> None:
    """Failed verifications (by strangers, say) leave the card's lock counter alone."""
    issued = issue(repo, ann)
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    for _ in range(10):
        repo.record_failed_attempt(kind="verification", conversation_id="c1", card_id=card.id)
    after = repo.find_card_by_serial(issued.serial)
    assert after is not None
    assert (after.failed_attempts, after.locked) == (0, False)


def test_failure_counts_per_conversation_customer_and_card(
    repo: WalletRepository, ann: CustomerView, ben: CustomerView
) -> None:
    one = repo.find_card_by_serial(issue(repo, ann).serial)
    two = repo.find_card_by_serial(issue(repo, ann).serial)
    assert one is not None and two is not None

    def fail(conversation: str, customer: CustomerView | None, card_id: int | None) -> None:
        repo.record_failed_attempt(
            kind="verification",
            conversation_id=conversation,
            customer_id=customer.id if customer else None,
            card_id=card_id,
        )

    fail("c1", ben, one.id)
    fail("c1", ben, None)
    fail("c1", None, one.id)
    fail("c2", ben, two.id)
    fail("c3", ann, one.id)
    fail("c3", None, None)

    def counts(conversation: str, customer: CustomerView | None, card_id: int | None) -> tuple:
        found = repo.failure_counts(
            conversation_id=conversation,
            customer_id=customer.id if customer else None,
            card_id=card_id,
            window=DAY,
        )
        return (found.conversation, found.customer, found.card)

    assert counts("c1", ben, one.id) == (3, 3, 3)
    assert counts("c2", ben, two.id) == (1, 3, 1)
    assert counts("c3", ann, one.id) == (2, 1, 3)
    assert counts("c3", None, None) == (2, 0, 0)
    assert counts("fresh", None, None) == (0, 0, 0)

    # An attempt older than the window no longer counts.
    with Session(repo.engine) as s, s.begin():
        s.add(
            FailedAttempt(
                kind="verification",
                conversation_id="c1",
                customer_id=ben.id,
                gift_card_id=one.id,
                created_at=utcnow() - 2 * DAY,
            )
        )
    assert counts("c1", ben, one.id) == (3, 3, 3)
    assert (
        repo.failure_counts(
            conversation_id="c1", customer_id=ben.id, card_id=one.id, window=3 * DAY
        ).conversation
        == 4
    )


# ----------------------------------------------------------------------- replacement codes


def _code_in(text: str) -> str:
    [found] = [f for f in codes.find_codes(text) if f.label == "claim_code"]
    return found.value


def test_replace_claim_code(
    repo: WalletRepository, engine: Engine, ann: CustomerView, ben: CustomerView
) -> None:
    issued = issue(repo, ann)
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None

    replacement = repo.replace_claim_code(card.id, actor="bot", conversation_id="c9")
    assert replacement.sent_to == "ben@example.com"  # the recipient's address on the order
    [queued] = repo.outbox("BEN@example.com")
    assert (queued.id, queued.has_claim_code) == (replacement.outbox_id, True)
    assert "{claim_code}" in queued.body

    rendered = repo.render_outbox_email(replacement.outbox_id)
    new_code = _code_in(rendered)
    assert new_code != issued.claim_code
    assert codes.format_claim_code(new_code) in rendered
    assert issued.order_number in rendered
    assert issued.serial not in rendered and issued.serial[-4:] in rendered

    # The outbox row itself holds no plain code: only the sealed one.
    assert claim_codes_in_rows(engine, [new_code, issued.claim_code]) == []

    assert repo.claim_code_status(issued.claim_code, ben.id) == ClaimCodeStatus.NOT_FOUND
    assert repo.redeem(issued.claim_code, ben.id, actor="bot").redeemed is False
    result = repo.redeem(new_code, ben.id, actor="bot")
    assert (result.redeemed, result.balance_minor) == (True, 50_00)

    [entry] = [e for e in repo.audit_log() if e["action"] == "card.code_replaced"]
    assert entry["subject"] == codes.mask_serial(issued.serial)
    assert entry["details"] == {"conversation_id": "c9", "outbox_id": replacement.outbox_id}


def test_replacement_for_a_shipped_card_goes_to_the_purchaser(
    repo: WalletRepository, ann: CustomerView
) -> None:
    issued = issue(repo, ann, recipient_email=None, shipping_address="1 Main St")
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    assert repo.replace_claim_code(card.id, actor="bot", conversation_id=None).sent_to == ann.email


@pytest.mark.parametrize("state", ["redeemed", "cancelled", "unknown"])
def test_replace_claim_code_refusals_write_nothing(
    repo: WalletRepository, ann: CustomerView, ben: CustomerView, state: str
) -> None:
    issued = issue(repo, ann)
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    card_id = card.id
    if state == "redeemed":
        repo.redeem(issued.claim_code, ben.id, actor="bot")
    elif state == "cancelled":
        repo.set_card_state(issued.serial, CardState.CANCELLED, actor="agent")
    else:
        card_id += 1000
    before = snapshot(repo.engine)
    with pytest.raises(WalletError):
        repo.replace_claim_code(card_id, actor="bot", conversation_id="c1")
    assert snapshot(repo.engine) == before


def test_render_unknown_outbox_email(repo: WalletRepository) -> None:
    with pytest.raises(WalletError):
        repo.render_outbox_email(12345)


# ------------------------------------------------------------------------ balance adjustments


def test_adjust_balance(repo: WalletRepository, ben: CustomerView) -> None:
    assert repo.adjust_balance(ben.id, 10_00, " goodwill ", actor="agent:sam") == 10_00
    assert repo.adjust_balance(ben.id, -4_00, "correction", actor="agent:sam") == 6_00
    assert repo.account_balance(ben.id) == 6_00
    lines = repo.ledger(ben.id)
    assert [(line.amount_minor, line.kind, line.reason) for line in lines] == [
        (10_00, "adjustment", "goodwill"),
        (-4_00, "adjustment", "correction"),
    ]
    assert actions(repo).count("balance.adjusted") == 2


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [
        (5_00, "", "needs a reason"),
        (5_00, "   ", "needs a reason"),
        (0, "nothing", "must not be zero"),
        (-6_01, "too much", "negative"),
    ],
)
def test_adjust_balance_refusals_write_nothing(
    repo: WalletRepository, ben: CustomerView, amount: int, reason: str, message: str
) -> None:
    repo.adjust_balance(ben.id, 6_00, "goodwill", actor="agent:sam")
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match=message):
        repo.adjust_balance(ben.id, amount, reason, actor="agent:sam")
    assert snapshot(repo.engine) == before
    assert repo.account_balance(ben.id) == 6_00


def test_adjust_balance_of_unknown_customer(repo: WalletRepository) -> None:
    before = snapshot(repo.engine)
    with pytest.raises(WalletError, match="no customer"):
        repo.adjust_balance(4242, 5_00, "goodwill", actor="agent:sam")
    assert snapshot(repo.engine) == before


# --------------------------------------------------------------------- cases and handoffs


def test_open_case(repo: WalletRepository, ann: CustomerView) -> None:
    issued = issue(repo, ann)
    card = repo.find_card_by_serial(issued.serial)
    assert card is not None
    details = {"serial": card.masked_serial, "order_number": issued.order_number}
    reference = repo.open_case(
        kind="damaged_card",
        conversation_id="c1",
        details=details,
        customer_id=ann.id,
        card_id=card.id,
    )
    assert re.fullmatch(r"GC-[A-Z0-9]{8}", reference)
    assert repo.case_details(reference) == {
        "kind": "damaged_card",
        "status": "open",
        "details": details,
    }
    assert repo.case_details("GC-NOPE0000") is None
    assert "case.opened" in actions(repo)
    other = repo.open_case(kind="scam_report", conversation_id="c2", details={})
    assert other != reference


def test_request_handoff_keeps_one_open_request_per_conversation(
    repo: WalletRepository, ann: CustomerView
) -> None:
    reference = repo.open_case(kind="damaged_card", conversation_id="c1", details={})
    first = repo.request_handoff(
        conversation_id="c1",
        reason="damaged_card",
        channel="rest",
        context={"intent": "damaged_card"},
        customer_id=ann.id,
    )
    again = repo.request_handoff(
        conversation_id="c1",
        reason="human_handoff",
        channel="rest",
        context={"last_message": "a person please"},
        case_reference=reference,
    )
    assert again == first
    other = repo.request_handoff(
        conversation_id="c2", reason="report_scam", channel="socketio", context={}
    )
    assert other != first

    request = repo.open_handoff("c1")
    assert request is not None
    assert (request["id"], request["reason"], request["status"]) == (
        first,
        "damaged_card",
        "waiting",
    )
    assert request["context"] == {"intent": "damaged_card", "last_message": "a person please"}
    assert repo.open_handoff("no-such-conversation") is None

    with Session(repo.engine) as s:
        rows = s.execute(
            select(HandoffRequest.case_id, func.count())
            .where(HandoffRequest.conversation_id == "c1")
            .group_by(HandoffRequest.case_id)
        ).all()
    assert len(rows) == 1 and rows[0][1] == 1 and rows[0][0] is not None
    assert actions(repo).count("handoff.requested") == 2


# ------------------------------------------------------------------------------ demo data


def test_demo_seed_loads_a_card_in_every_state_and_is_idempotent(repo: WalletRepository) -> None:
    assert demo.seed(repo) is True
    loaded = snapshot(repo.engine)
    assert demo.seed(repo) is False
    assert snapshot(repo.engine) == loaded

    ben = repo.find_customer_by_email("ben@example.com")
    assert ben is not None
    states = {}
    for card in demo.CARDS:
        view = repo.find_card_by_serial(card.serial)
        assert view is not None, card.label
        assert (view.amount_minor, view.order_number) == (card.amount_minor, card.order_number)
        states[card.label] = view.display_state
    assert set(states.values()) == {"active", "redeemed", "inactive", "cancelled", "locked"}

    expected = {
        "active": ClaimCodeStatus.REDEEMABLE,
        "redeemed": ClaimCodeStatus.REDEEMED_BY_YOU,  # asked as Ben, who redeemed it
        "inactive": ClaimCodeStatus.NOT_ACTIVATED,
        "cancelled": ClaimCodeStatus.CANCELLED,
        "locked": ClaimCodeStatus.LOCKED,
    }
    for card in demo.CARDS:
        assert repo.claim_code_status(card.claim_code, ben.id) == expected[states[card.label]]
    assert repo.account_balance(ben.id) == 100_00
    for name, email in demo.CUSTOMERS:
        customer = repo.find_customer_by_email(email)
        assert customer is not None and customer.name == name
