"""The chat widget as a shopper sees it, for the browser tests (a page object)."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

LAUNCHER_NAME = re.compile(r"^Chat with us")


class Widget:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.launcher = page.get_by_role("button", name=LAUNCHER_NAME)
        self.panel = page.get_by_role("dialog", name="Gift card help")
        self.log = page.get_by_role("log", name="Conversation")
        self.message_box = page.get_by_role("textbox", name="Message")
        self.send_button = page.get_by_role("button", name="Send")
        self.messages = page.locator(".gb-messages > li")
        self.bot_messages = page.locator(".gb-from-bot")

    def open(self) -> None:
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()

    def say(self, text: str) -> str:
        """Send ``text``; return what the assistant answered, once it has finished answering."""
        self.open()
        self.wait_until_answered()  # the greeting, sent when the panel first opens
        before = self.messages.count()
        self.message_box.fill(text)
        self.send_button.click()
        return self.replies_after(before)

    def choose(self, title: str) -> str:
        before = self.messages.count()
        self.page.get_by_role("button", name=title).click()
        return self.replies_after(before)

    def replies_after(self, before: int) -> str:
        """What the assistant said after the first ``before`` messages, once it is done."""
        self.wait_until_answered()
        items = self.messages.all()[before:]
        return "\n".join(
            item.inner_text()
            for item in items
            if "gb-from-user" not in (item.get_attribute("class") or "")
        )

    def wait_until_answered(self) -> None:
        """Until nothing the shopper sent is unacknowledged (the widget marks the log busy).

        Rasa acknowledges a message once every reply to it has been sent.
        """
        expect(self.log).not_to_have_attribute("data-busy", "true")
        expect(self.page.locator(".gb-typing")).to_be_hidden()

    def shopper_lines(self) -> list[str]:
        return [t.strip() for t in self.page.locator(".gb-from-user .gb-bubble").all_inner_texts()]

    def stored(self, key: str) -> Any:
        return json.loads(self.page.evaluate("key => localStorage.getItem(key)", f"giftbot:{key}"))

    def session_id(self) -> str:
        return str(self.stored("session")["id"])

    def bubble(self, text: str) -> Locator:
        return self.page.locator(".gb-bubble", has_text=text)
