"""The support desk in a real browser (issue 12): cases answered by email, the queue's
preview, presence and reassignment, with a shopper in the widget and agents in the console."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable

import pytest

from bot.wallet import codes
from bot.wallet.repository import WalletRepository
from tests.conftest import agents_available
from tests.servers import Servers
from tests.web.conftest import PRESENCE_SECONDS

try:
    from playwright.sync_api import BrowserContext, Page, expect

    from tests.web.test_console import (  # noqa: F401  (fixtures)
        Agent,
        Console,
        ask_for_a_person,
        make_agent,
        new_context,
    )
    from tests.web.test_widget import screenshot
    from tests.web.widget import Widget
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.servers

# The console's sweep runs every 3 s; a loaded machine may answer slowly on top of that.
PRESENCE_DEADLINE_MS = (PRESENCE_SECONDS + 3) * 1000 + 30_000


def test_a_case_from_the_no_agent_path_is_answered_by_email_and_closed(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    wallet: WalletRepository,
    servers: Servers,
) -> None:
    with agents_available(wallet, False):
        chat = Widget(page)
        answer = chat.say("I want to talk to a person please")
        found = re.search(r"case (GC-[A-Z0-9]{8})", answer)
        assert found is not None and "What email address" in answer, answer
        email = f"cara-{uuid.uuid4().hex[:6]}@example.com"
        assert "We'll email you at" in chat.say(email)
    reference = found.group(1)

    agent = make_agent("Cas", available=False)
    console = Console.signed_in(new_context(), agent)
    console.page.get_by_role("button", name=re.compile("^Cases")).click()
    entry = console.page.locator("#cases .q-item", has_text=f"Case {reference}")
    expect(entry).to_contain_text("Shopper asked")  # the reason
    expect(entry).to_contain_text("“I want to talk to a person please”")
    expect(entry).to_contain_text(f"email {codes.mask_email(email)}")
    expect(entry).to_contain_text(re.compile(r"open \d+ (s|min)"))
    # Oldest first: every open case opened before this one is above it.
    references = console.page.locator("#cases .q-title").all_inner_texts()
    opened = [c.reference for c in wallet.open_cases()]
    assert [r.removeprefix("Case ") for r in references] == opened
    entry.click()
    expect(console.page.get_by_role("heading", name=f"Case {reference}")).to_be_visible()
    transcript = console.page.get_by_role("log", name="Case transcript")
    expect(transcript).to_contain_text("I want to talk to a person please")
    expect(transcript).to_contain_text("What email address should we reply to?")
    context = console.page.locator("#case-context")
    expect(context).to_contain_text(codes.mask_email(email))

    console.page.get_by_label("Email to the shopper").fill(
        "Hello! We looked at your card and a new one is on its way."
    )
    console.page.get_by_role("button", name="Send email").click()
    expect(console.page.locator("#case-notice")).to_have_text("Email queued in the outbox.")
    console.page.get_by_label("Case note").fill("Replacement ordered by hand.")
    console.page.get_by_role("button", name="Add case note").click()
    history = console.page.locator("#case-history li")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text(f"Email · agent:{agent.username}")
    expect(history.last).to_contain_text("Replacement ordered by hand.")
    screenshot(console.page, "console-cases.png", servers)

    (sent,) = wallet.outbox(email)
    assert sent.subject == f"Your gift card support case {reference}"
    assert "a new one is on its way." in sent.body and f"Case {reference}" in sent.body

    console.page.get_by_label("How it was resolved").fill("New card sent by post")
    console.page.get_by_role("button", name="Close the case").click()
    expect(console.page.locator("#case-notice")).to_have_text("Case closed.")
    expect(entry).to_have_count(0)
    case = wallet.get_case(reference)
    assert case is not None and (case.status, case.resolution) == (
        "closed",
        "New card sent by post",
    )
    actions = [
        (e["actor"], e["action"])
        for e in wallet.audit_log(300)
        if e["subject"] == reference and e["actor"].startswith("agent:")
    ]
    actor = f"agent:{agent.username}"
    assert actions == [
        (actor, "case.closed"),
        (actor, "case.note_added"),
        (actor, "case.email_sent"),
    ]


def test_the_queue_shows_what_the_shopper_said_and_announces_arrivals(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
) -> None:
    agent = make_agent("Tia")
    console = Console.signed_in(new_context(), agent)
    expect(console.page.locator("#waiting-count")).to_be_visible()
    chat = Widget(page)
    conversation_id = ask_for_a_person(chat)

    entry = console.queue_entry(conversation_id)
    expect(entry).to_contain_text("“I want to talk to a person please”")
    expect(entry).to_contain_text("Journey: none · card none given")
    expect(entry).to_contain_text("not verified")
    announcer = console.page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_contain_text("New chat waiting: ")
    expect(console.page).to_have_title(re.compile(r"^\(\d+\) Gift card support console$"))
    screenshot(console.page, "console.png", servers)


def test_when_the_last_agent_closes_the_console_shoppers_get_a_case(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    wallet: WalletRepository,
) -> None:
    with agents_available(wallet, False):
        agent = make_agent("Lee")  # the only agent available
        context = new_context()
        Console.signed_in(context, agent)
        chat = Widget(page)
        conversation_id = ask_for_a_person(chat)  # queued for Lee
        context.close()  # the tab goes without signing out

        # Within the stated time the waiting shopper is told, and has a case instead.
        expect(chat.bot_messages.last).to_contain_text(
            "No one from our support team is free any more", timeout=PRESENCE_DEADLINE_MS
        )
        assert wallet.open_handoff(conversation_id) is None
        assert agent.username not in {a.username for a in wallet.available_agents()}
        case = wallet.latest_case_of(conversation_id)
        assert case is not None and case.status == "open"
        assert "We'll email you at" in chat.say("lee-shopper@example.com")

        # The next request goes straight to the case path: nobody is there.
        answer = chat.say("I want to talk to a person please")
        assert "No one from our support team is free right now" in answer, answer


def test_an_agent_who_signs_out_hands_their_chats_back_to_the_queue(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    wallet: WalletRepository,
) -> None:
    sam, zoe = make_agent("Sam"), make_agent("Zoe")
    sams = Console.signed_in(new_context(), sam)
    chat = Widget(page)
    conversation_id = ask_for_a_person(chat)
    sams.open(conversation_id)
    sams.take()
    sams.page.get_by_role("textbox", name="Internal note").fill("Wants a refund; checked order.")
    sams.page.get_by_role("button", name="Add note").click()
    expect(sams.page.locator("#notes")).to_contain_text("Wants a refund")
    sams.page.get_by_role("button", name="Sign out").click()
    expect(sams.page.get_by_role("button", name="Sign in")).to_be_visible()

    expect(page.locator(".gb-notice").last).to_have_text(
        "Sam Rivera from customer support has left the chat."
    )
    expect(chat.bot_messages.last).to_contain_text(
        "Sam Rivera had to leave. You're back in the queue"
    )
    zoes = Console.signed_in(new_context(), zoe)
    expect(zoes.queue_entry(conversation_id)).to_be_visible()
    zoes.open(conversation_id)
    expect(zoes.page.locator("#notes")).to_contain_text("Wants a refund; checked order.")
    zoes.take()
    zoes.reply_box.fill("Hi, Zoe here, I have your notes.")
    zoes.reply_box.press("Enter")
    expect(page.locator(".gb-from-agent").last).to_contain_text("Zoe here")

    # Zoe cannot finish it in the chat: she hands back with a case, answered by email.
    zoes.page.get_by_label("What is left to do").fill(
        "Refund needs finance; card 1712345678901234567"
    )
    zoes.page.get_by_role("button", name="Hand back with a case").click()
    expect(zoes.page.locator("#notice")).to_have_text(
        re.compile(r"^Handed back; case GC-[A-Z0-9]{8} will be answered by email\.$")
    )
    expect(chat.bot_messages.last).to_contain_text("what email address should we reply to?")
    case = wallet.latest_case_of(conversation_id)
    assert case is not None and (case.kind, case.status) == ("chat_unresolved", "open")
    assert case.details["follow_up"] == "Refund needs finance; card ••••4567"
    assert "We'll email you at" in chat.say("ria.lopez@example.com")
    case = wallet.get_case(case.reference)
    assert case is not None and case.contact_email == "ria.lopez@example.com"
    zoes.page.get_by_role("button", name=re.compile("^Cases")).click()
    expect(zoes.page.locator("#cases .q-item", has_text=f"Case {case.reference}")).to_contain_text(
        "Chat unresolved"
    )
    returned = [
        e
        for e in wallet.audit_log(300)
        if e["action"] == "handoff.returned_to_queue" and e["subject"] == conversation_id
    ]
    assert [e["details"]["why"] for e in returned] == ["signed out"]
