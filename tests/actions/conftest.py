"""Run our actions as the action server would: real domain, real trackers, real wallet store.

The wallet store is the session's SQLite file (tests/conftest.py points the settings at a
throw-away var dir), migrated and loaded with the demo data once.
"""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.wallet.repository import WalletRepository
from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run coroutine tests with anyio's plugin (already installed with Rasa) on asyncio."""
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return Domain.load(str(ROOT / "domain.yml")).as_dict()


@dataclass
class Turn:
    """What one action run said and did."""

    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def responses(self) -> list[str]:
        return [m["response"] for m in self.messages if m.get("response")]

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages if m.get("text")]

    def slot(self, name: str) -> Any:
        values = [e["value"] for e in self.events if e.get("event") == "slot" and e["name"] == name]
        return values[-1] if values else None

    def sets(self, name: str) -> bool:
        return any(e.get("event") == "slot" and e["name"] == name for e in self.events)


@dataclass
class Conversation:
    """A tracker of one conversation, built from the real domain's slots."""

    domain: dict[str, Any]
    sender_id: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    token: str | None = None

    def tracker(
        self,
        slots: dict[str, Any] | None = None,
        *,
        new_slots: dict[str, Any] | None = None,
        text: str = "",
        intent: str = "inform",
        entities: list[dict[str, Any]] | None = None,
        requested_slot: str | None = None,
        active_loop: str | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> Tracker:
        all_slots: dict[str, Any] = {name: None for name in self.domain["slots"]}
        all_slots.update(slots or {})
        all_slots.update(new_slots or {})
        all_slots["requested_slot"] = requested_slot
        # Slots filled this turn (by Rasa's action_extract_slots) follow the user's message.
        # ``history``: earlier events of the conversation, before this turn's message.
        events = [*(history or []), {"event": "user", "text": text}] + [
            {"event": "slot", "name": name, "value": value}
            for name, value in (new_slots or {}).items()
        ]
        metadata = {"customer_token": self.token} if self.token else {}
        return Tracker(
            sender_id=self.sender_id,
            slots=all_slots,
            latest_message={
                "text": text,
                "intent": {"name": intent, "confidence": 1.0},
                "entities": entities or [],
                "metadata": metadata,
            },
            events=events,
            paused=False,
            followup_action=None,
            active_loop={"name": active_loop} if active_loop else {},
            latest_action_name="action_listen",
        )

    async def run(self, action: Action, **tracker_args: Any) -> Turn:
        dispatcher = CollectingDispatcher()
        tracker = self.tracker(**tracker_args)
        events = await action.run(dispatcher, tracker, self.domain)
        return Turn(dispatcher.messages, list(events))


@pytest.fixture
def conversation(domain: dict[str, Any], wallet: WalletRepository) -> Conversation:
    return Conversation(domain)


@dataclass(frozen=True)
class Card:
    serial: str
    claim_code: str
    order_number: str


def new_customer(wallet: WalletRepository, name: str = "Test Shopper") -> tuple[str, str]:
    """A customer of its own (so failure counts never leak between tests): (email, token)."""
    email = f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    wallet.create_customer(name, email)
    return email, token_for(wallet, email)


def new_card(
    wallet: WalletRepository,
    purchaser_email: str,
    *,
    amount_minor: int = 40_00,
    recipient_name: str = "Zoë Ångström",
    recipient_email: str | None = "zoe@example.com",
    shipping_address: str | None = None,
) -> Card:
    issued = wallet.issue_card(
        amount_minor=amount_minor,
        purchaser_email=purchaser_email,
        recipient_name=recipient_name,
        recipient_email=recipient_email,
        shipping_address=shipping_address,
    )
    return Card(issued.serial, issued.claim_code, issued.order_number)
