"""One line per speed-up of bot/rasa_ext/speedups.py: Rasa 3.6.21's code and the replacement
timed on the same real inputs, in this process: the events of a conversation the bench just
held (read back from the assistant's tracker store) and an action server's answer."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bot.tracker_store  # noqa: F401 - installs the speed-ups, as in the Rasa server
from bot.rasa_ext import speedups


def _per_call(function: Callable[[], Any], seconds: float = 0.5) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            function()
            calls += 1
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def stored_conversation(tracker_db: Path) -> list[dict[str, Any]]:
    """The longest conversation in a SQLite tracker store, as its stored events."""
    with sqlite3.connect(tracker_db) as connection:
        (sender,) = connection.execute(
            "SELECT sender_id FROM events GROUP BY sender_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        rows = connection.execute(
            "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(data) for (data,) in rows]


def action_response() -> dict[str, Any]:
    """What the action server answers a form's turn: slots, the loop, a response."""
    from rasa_sdk.events import ActiveLoop, SlotSet

    return {
        "events": [
            SlotSet("serial_number", "1712345678901234567"),
            SlotSet("requested_slot", "order_number"),
            ActiveLoop("balance_form"),
        ],
        "responses": [{"response": "utter_ask_balance_form_order_number", "template": None}],
    }


def measure(tracker_db: Path) -> list[dict[str, Any]]:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    events = stored_conversation(tracker_db)
    action, answer = RemoteAction("balance_form", None), action_response()
    resolve_original = speedups.ORIGINALS["cache_event_type_resolution"]
    validate_original = speedups.ORIGINALS["cache_action_response_validator"]
    names = [event["event"] for event in events]
    return [
        {
            "name": "cache_action_response_validator",
            "what": "validating an action server's answer",
            "before_us": _per_call(lambda: validate_original(action, answer)),
            "after_us": _per_call(lambda: RemoteAction._validate_action_result(action, answer)),
            "per_turn": "once per call to the action server (a form's turn: 1-2)",
        },
        {
            "name": "cache_event_type_resolution",
            "what": f"resolving the event types of a stored {len(events)}-event conversation",
            "before_us": _per_call(lambda: [resolve_original(n) for n in names]),
            "after_us": _per_call(lambda: [Event.resolve_by_type(n) for n in names]),
            "per_turn": "each time the conversation is loaded (once a turn), and per event an "
            "action returns",
        },
    ]
