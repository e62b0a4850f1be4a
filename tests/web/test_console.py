"""The live agent console in a real browser: a shopper in one browser context (the widget on the
demo page), agents in others (``/agent``), against the real Rasa, action and web servers."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from bot.wallet import codes
from bot.wallet.repository import WalletRepository
from tests.conftest import agents_available, token_for
from tests.servers import Chat, Servers
from tests.web.conftest import REPLY_TIMEOUT_MS

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect

    from tests.web.test_widget import screenshot
    from tests.web.widget import Widget
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.servers

CONSOLE_VIEWPORT = {"width": 1280, "height": 900}
SIGN_IN_FAILED = "Wrong username or password, or too many attempts"


@dataclass(frozen=True)
class Agent:
    username: str
    password: str
    display_name: str


@pytest.fixture
def make_agent(wallet: WalletRepository) -> Iterator[Callable[..., Agent]]:
    """Agents of this test, available for handoffs; disabled (so unavailable) afterwards."""
    made: list[str] = []

    def make(first_name: str, available: bool = True) -> Agent:
        username = f"{first_name.lower()}-{uuid.uuid4().hex[:6]}"
        agent = Agent(username, f"pw-{secrets.token_hex(8)}", f"{first_name} Rivera")
        wallet.create_agent(agent.username, agent.password, display_name=agent.display_name)
        made.append(username)
        if available:
            wallet.set_agent_available(username, True)
        return agent

    yield make
    for username in made:
        wallet.disable_agent(username)


@pytest.fixture
def new_context(browser: Browser, site: str) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh browser profiles (one per agent); closed afterwards, failing on script errors."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def new() -> BrowserContext:
        context = browser.new_context(base_url=site, viewport=CONSOLE_VIEWPORT)
        context.set_default_timeout(REPLY_TIMEOUT_MS)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        contexts.append(context)
        return context

    yield new
    for context in contexts:
        context.close()
    assert not errors, f"script errors in the console: {errors}"


class Console:
    """The agent console as an agent sees it (a page object)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.transcript = page.get_by_role("log", name="Transcript")
        self.reply_box = page.get_by_role("textbox", name="Reply")
        self.status = page.locator("#conversation-status")
        self.alert = page.get_by_role("alert")

    @classmethod
    def signed_in(cls, context: BrowserContext, agent: Agent) -> Console:
        page = context.new_page()
        page.goto("/agent")
        page.get_by_label("Username").fill(agent.username)
        page.get_by_label("Password").fill(agent.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        return cls(page)

    def queue_entry(self, conversation_id: str) -> Any:
        return self.page.locator("#waiting .q-item", has_text=f"Chat {conversation_id[:8]}")

    def open(self, conversation_id: str) -> None:
        self.page.locator(".q-item", has_text=f"Chat {conversation_id[:8]}").click()
        expect(self.page.get_by_role("heading", name=f"Chat {conversation_id[:8]}")).to_be_visible()

    def take(self) -> None:
        self.page.get_by_role("button", name="Take").click()
        expect(self.status).to_have_text(re.compile("^You have this conversation"))

    def csrf_token(self) -> str:
        return str(self.page.locator('meta[name="csrf-token"]').get_attribute("content"))


def ask_for_a_person(chat: Widget) -> str:
    answer = chat.say("I want to talk to a person please")
    assert "I've asked a person" in answer, answer
    return chat.session_id()


# ------------------------------------------------------------------------- the round trip


def test_an_agent_takes_over_and_hands_back(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
    wallet: WalletRepository,
) -> None:
    agent = make_agent("Sam")  # available before the shopper asks: the handoff queues
    console = Console.signed_in(new_context(), agent)
    expect(console.page.get_by_label("Available for chats")).to_be_checked()

    chat = Widget(page)
    conversation_id = ask_for_a_person(chat)

    # The queue updates by itself, with what the agent needs to pick a conversation.
    entry = console.queue_entry(conversation_id)
    expect(entry).to_be_visible()
    expect(entry).to_contain_text("Shopper asked")
    expect(entry).to_contain_text("socketio · signed out · not verified")
    expect(entry).to_contain_text(re.compile(r"waiting \d+ (s|min)"))

    console.open(conversation_id)
    expect(console.transcript).to_contain_text("I want to talk to a person please")
    expect(console.transcript).to_contain_text("I've asked a person")
    expect(console.reply_box).to_be_disabled()
    console.take()
    expect(console.transcript).to_contain_text("The assistant is paused.")
    expect(page.locator(".gb-notice").last).to_have_text(
        "Sam Rivera from customer support has joined the chat."
    )
    request_id = wallet.open_handoff(conversation_id)
    assert request_id is not None and request_id["status"] == "taken"

    # Agent -> shopper, live; Enter sends.
    console.reply_box.fill("Hi, I'm Sam. How can I help?")
    console.reply_box.press("Enter")
    expect(page.locator(".gb-from-agent").last).to_contain_text("Hi, I'm Sam. How can I help?")
    expect(page.locator(".gb-from-agent .gb-author").last).to_have_text(
        "Sam Rivera (support agent)"
    )
    expect(console.reply_box).to_have_value("")
    page.reload()  # what the agent said survives a reload of the shopper's page
    chat = Widget(page)
    expect(page.locator(".gb-from-agent").last).to_contain_text("Hi, I'm Sam. How can I help?")

    # Shopper -> agent, live, while the assistant stays silent.
    bot_replies = chat.bot_messages.count()
    chat.message_box.fill("The card is 1712 3456 7890 1234 567 and the code is torn")
    chat.send_button.click()
    expect(console.transcript).to_contain_text("The card is ••••4567 and the code is torn")
    chat.wait_until_answered()
    page.wait_for_timeout(1500)
    assert chat.bot_messages.count() == bot_replies
    assert "1712 3456" not in console.page.content()

    # An internal note is for agents only.
    console.page.get_by_role("textbox", name="Internal note").fill(
        "Shopper sounds worried; card ends 4567."
    )
    console.page.get_by_role("button", name="Add note").click()
    expect(console.page.locator("#notes")).to_contain_text("Shopper sounds worried")
    screenshot(console.page, "console-chat.png", servers)

    console.page.get_by_role("button", name="Hand back to bot").click()
    expect(console.status).to_have_text("This conversation went back to the assistant.")
    expect(page.locator(".gb-notice").last).to_have_text(
        "Sam Rivera from customer support has left the chat."
    )
    expect(chat.bot_messages.last).to_contain_text("You're back with the gift card assistant")
    assert "Shopper sounds worried" not in chat.log.inner_text()

    # The assistant answers again.
    assert "On the web:" in chat.say("how do I reload my gift card balance?")
    expect(console.transcript).to_contain_text("The assistant is back on.")
    expect(console.queue_entry(conversation_id)).to_have_count(0)
    actions = {(e["actor"], e["action"]) for e in wallet.audit_log(200)}
    assert (f"agent:{agent.username}", "handoff.taken") in actions
    assert (f"agent:{agent.username}", "handoff.handed_back") in actions


# ---------------------------------------------------------------------------- security


def test_a_visitor_without_a_session_sees_only_the_sign_in_form(
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
) -> None:
    agent = make_agent("Kim", available=False)
    visitor = new_context()
    page = visitor.new_page()
    page.goto("/agent")
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    for hidden in ("Waiting", "Take", "Reply", "Hand back to bot"):
        expect(page.get_by_text(hidden, exact=True)).to_have_count(0)

    # Nothing of the console answers without a session: its API, its script, its files.
    api = visitor.request
    assert api.get("/agent/api/queue").status == 401
    assert api.get("/agent/api/me").status == 401
    assert api.get("/agent/api/conversations/1").status == 401
    assert api.get("/agent/assets/console.js").status == 401
    assert api.get("/widget/console/console.js").status == 404
    for path in ("/agent/api/conversations/1/take", "/agent/api/availability", "/agent/sign-out"):
        assert api.post(path, data={}).status in (401, 403), path

    # A wrong password and an unknown agent get the same answer.
    for username, password in (
        (agent.username, "not-the-password"),
        ("nobody-here", "whatever1234"),
    ):
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text(SIGN_IN_FAILED)
    assert api.get("/agent/api/queue").status == 401

    # The session cookie, once signed in: HTTP-only, SameSite=Strict, with an expiry.
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill(agent.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookie = next(c for c in visitor.cookies() if c["name"] == "giftbot_agent")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert api.get("/agent/api/queue").status == 200

    # Signing out ends the session, also for a copy of the cookie kept from before.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    copy = requests.get(
        f"{page.url.split('/agent')[0]}/agent/api/queue",
        cookies={"giftbot_agent": cookie["value"]},
        timeout=30,
    )
    assert copy.status_code == 401


def test_requests_without_the_csrf_token_are_refused(
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    wallet: WalletRepository,
) -> None:
    agent = make_agent("Lee", available=False)
    context = new_context()
    console = Console.signed_in(context, agent)
    api = context.request  # the signed-in session's cookie goes with these
    assert api.get("/agent/api/me").status == 200
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = api.post("/agent/api/availability", data={"available": True}, headers=headers)
        assert refused.status == 403
        assert api.post("/agent/sign-out", headers=headers).status == 403
    assert wallet.find_agent(agent.username).available is False  # type: ignore[union-attr]

    token = console.csrf_token()
    allowed = api.post(
        "/agent/api/availability", data={"available": True}, headers={"X-CSRF-Token": token}
    )
    assert allowed.status == 200 and allowed.json()["agent"]["available"] is True
    # The form on the sign-in page has a token of its own, too.
    fresh = new_context().request
    assert fresh.get("/agent").status == 200
    signing_in = {"username": agent.username, "password": agent.password}
    assert fresh.post("/agent/sign-in", data=signing_in).status == 403


# ---------------------------------------------------------------------------- no agent


def test_with_no_agent_available_the_shopper_gets_a_case_not_a_wait(
    page: Page,
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    wallet: WalletRepository,
) -> None:
    agent = make_agent("Noa", available=False)  # signed in, but not taking chats
    console = Console.signed_in(new_context(), agent)
    expect(console.page.get_by_label("Available for chats")).not_to_be_checked()
    with agents_available(wallet, False):
        chat = Widget(page)
        answer = chat.say("I want to talk to a person please")
    assert "No one from our support team is free right now" in answer, answer
    case = re.search(r"case (GC-[A-Z0-9]{8})", answer)
    assert case is not None and "What email address" in answer
    assert "We'll email you at" in chat.say("robin@example.com")
    assert wallet.case_details(case.group(1))["details"]["contact_email"] == "robin@example.com"
    # Nobody was left waiting: the conversation never reached the queue.
    conversation_id = chat.session_id()
    assert wallet.open_handoff(conversation_id) is None
    # Once the console shows the whole queue, this conversation is not in it.
    waiting = len(wallet.waiting_handoffs())
    expect(console.page.locator("#waiting-count")).to_have_text(str(waiting))
    expect(console.page.locator("#waiting .q-item")).to_have_count(waiting)
    expect(console.queue_entry(conversation_id)).to_have_count(0)


# ------------------------------------------------------------------------------ racing


def test_two_agents_racing_to_take_one_conversation(
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
    site: str,
) -> None:
    ana, ben = make_agent("Ana"), make_agent("Ben")
    first = servers.chat()
    assert "I've asked a person" in first.say("can I talk to a human agent")
    consoles = [Console.signed_in(new_context(), agent) for agent in (ana, ben)]
    for console in consoles:
        console.open(first.sender)
    for console in consoles:  # both click before either answer is back
        console.page.get_by_role("button", name="Take").dispatch_event("click")
    winners = []
    for console, agent in zip(consoles, (ana, ben)):
        expect(console.status).to_have_text(
            re.compile("^(You have this conversation|.* has this conversation)")
        )
        if console.status.inner_text().startswith("You have"):
            winners.append(agent)
    assert len(winners) == 1
    loser = consoles[1] if winners[0] is ana else consoles[0]
    expect(loser.alert).to_have_text(
        f"The conversation was already taken by {winners[0].username}."
    )
    expect(loser.reply_box).to_be_disabled()

    # Straight at the API, truly at the same moment: one 200, one 409.
    second = servers.chat()
    assert "I've asked a person" in second.say("I'd like to speak to a person")
    sessions = []
    for agent in (ana, ben):
        session = requests.Session()
        page = session.get(f"{site}/agent", timeout=30).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        signed = session.post(
            f"{site}/agent/sign-in",
            json={"username": agent.username, "password": agent.password},
            headers={"X-CSRF-Token": token},
            timeout=60,
        )
        assert signed.status_code == 200
        page = session.get(f"{site}/agent", timeout=30).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        sessions.append((session, token))
    queue = sessions[0][0].get(f"{site}/agent/api/queue", timeout=30).json()
    request_id = next(
        item["id"] for item in queue["waiting"] if item["conversation"] == second.sender[:8]
    )

    def take(pair: tuple[requests.Session, str]) -> int:
        session, token = pair
        return session.post(
            f"{site}/agent/api/conversations/{request_id}/take",
            json={},
            headers={"X-CSRF-Token": token},
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(take, sessions)) == [200, 409]


# --------------------------------------------------------------------------- resolving


def test_a_replacement_from_the_console_goes_to_the_outbox_and_the_audit_log(
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
    wallet: WalletRepository,
) -> None:
    agent = make_agent("Ria")
    purchaser = f"dana-{uuid.uuid4().hex[:6]}@example.com"
    wallet.create_customer("Dana Whitfield", purchaser)
    recipient = f"elodie-{uuid.uuid4().hex[:6]}@example.com"
    card = wallet.issue_card(
        amount_minor=60_00,
        purchaser_email=purchaser,
        recipient_name="Élodie Núñez",
        recipient_email=recipient,
    )
    # The shopper proves the damaged card theirs, then still wants a person.
    chat = servers.chat()
    assert "serial number" in chat.say("the claim code came off with the scratch-off foil")
    chat.say(card.serial)
    chat.say(card.order_number)
    chat.say("dana whitfield")
    chat.say("elodie nunez")
    assert "emailed a new claim code" in chat.say(recipient)
    assert len(wallet.outbox(recipient)) == 1
    assert "I've asked a person" in chat.say("I want to talk to a human")

    console = Console.signed_in(new_context(), agent)
    console.open(chat.sender)
    expect(console.page.locator("#context")).to_contain_text(
        f"card {codes.mask_serial(card.serial)} verified by order details"
    )
    replace = console.page.get_by_role("button", name="Send a replacement code")
    expect(replace).to_be_disabled()  # only once the agent has the conversation
    console.take()
    expect(replace).to_be_enabled()
    replace.click()
    masked_email = codes.mask_email(recipient)
    expect(console.page.locator("#notice")).to_have_text(
        f"A replacement code was emailed to {masked_email}."
    )

    mails = wallet.outbox(recipient)
    assert len(mails) == 2 and mails[-1].has_claim_code
    entry = next(e for e in wallet.audit_log(50) if e["action"] == "card.code_replaced")
    assert entry["actor"] == f"agent:{agent.username}"
    assert entry["subject"] == codes.mask_serial(card.serial)
    assert entry["details"]["conversation_id"] == chat.sender
    shown = console.page.content()
    assert card.serial not in shown and card.claim_code not in shown
    emailed = wallet.render_outbox_email(mails[-1].id)
    new_codes = [f.value for f in codes.find_codes(emailed) if f.label == "claim_code"]
    assert len(new_codes) == 1
    assert new_codes[0] not in shown and codes.format_claim_code(new_codes[0]) not in shown


def test_a_balance_adjustment_and_closing_the_case_from_the_console(
    new_context: Callable[[], BrowserContext],
    make_agent: Callable[..., Agent],
    servers: Servers,
    wallet: WalletRepository,
) -> None:
    agent = make_agent("Noor")
    email = f"gus-{uuid.uuid4().hex[:6]}@example.com"
    shopper = wallet.create_customer("Gus Moreau", email)
    card = wallet.issue_card(
        amount_minor=40_00,
        purchaser_email="ann@example.com",
        recipient_name="Hal Jordan",
        shipping_address="1 Main Street, Springfield",
    )
    # A signed-in shopper whose damaged-card details do not match: a case, then a person.
    chat = Chat(servers.rasa_url, f"test-{uuid.uuid4().hex[:12]}", token_for(wallet, email))
    chat.say("my card is torn and the claim code is unreadable")
    chat.say(card.serial)
    chat.say(card.order_number)
    chat.say("Gus Moreau")
    chat.say("Somebody Else")
    reply = chat.say("9 Elm Road, Leeds LS1 4AP")
    reference = re.search(r"case (GC-[A-Z0-9]{8})", reply)
    assert reference and "connect you with a person" in reply, reply
    assert "I've asked a person" in chat.say("yes please")

    console = Console.signed_in(new_context(), agent)
    console.open(chat.sender)
    context = console.page.locator("#context")
    expect(context).to_contain_text(f"{reference.group(1)} (damaged card unverified, open)")
    expect(context).to_contain_text(codes.mask_serial(card.serial))
    console.take()
    # No replacement for a card the shopper did not prove theirs.
    expect(console.page.get_by_role("button", name="Send a replacement code")).to_be_disabled()

    # A reason is required, here and in the repository.
    token = console.csrf_token()
    request_id = wallet.open_handoff(chat.sender)["id"]  # type: ignore[index]
    refused = console.page.context.request.post(
        f"/agent/api/conversations/{request_id}/adjustment",
        data={"amount": "5.00", "reason": "  "},
        headers={"X-CSRF-Token": token},
    )
    assert refused.status == 400
    console.page.get_by_label("Amount").fill("7.50")
    console.page.get_by_label("Reason").fill("Goodwill credit for the damaged card")
    console.page.get_by_role("button", name="Adjust balance").click()
    expect(console.page.locator("#notice")).to_have_text(
        "Balance adjusted: the account now holds $7.50."
    )
    assert wallet.account_balance(shopper.id) == 7_50

    console.page.get_by_label("Resolution").fill("Credited $7.50; card reported to the purchaser.")
    console.page.get_by_role("button", name="Close case").click()
    expect(console.page.locator("#notice")).to_have_text(f"Case {reference.group(1)} closed.")
    assert wallet.case_details(reference.group(1))["status"] == "closed"  # type: ignore[index]

    actor = f"agent:{agent.username}"
    log = [(e["actor"], e["action"], e["subject"]) for e in wallet.audit_log(50)]
    assert (actor, "balance.adjusted", str(shopper.id)) in log
    assert (actor, "case.closed", reference.group(1)) in log
