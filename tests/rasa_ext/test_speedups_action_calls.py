"""``copy_the_tracker_for_form_validation`` (bot/rasa_ext/speedups.py): the tracker a form's
validation is called with is the one Rasa 3.6.21 replays. ``send_form_validation_the_latest_turn``:
a form's validation action is sent the events from the latest message on, and answers as it did
with the whole conversation. On every form turn of the recorded bench conversation (the tracker as Rasa's
``FormAction`` hands it to the validation, with a slot candidate): the body is Rasa's but for
the events, and everything a validation reads of it (through rasa_sdk's ``Tracker``) is the
same. And the project's validation code reads no events (by its source: no path from a form
validation to code that does)."""

from __future__ import annotations

import ast
import copy
import json
import math
from collections.abc import Iterator
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    Restarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import METADATA_MODEL_ID
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker

import bot.tracker_store  # noqa: F401 - what Rasa imports: installs the speed-ups
from bot.rasa_ext import speedups
from tests.rasa_ext.recorded import ROOT, recorded_trackers

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
ORIGINAL = speedups.ORIGINALS["send_form_validation_the_latest_turn"]
ENDPOINT = EndpointConfig("http://127.0.0.1:5055/webhook")
# What rasa_sdk's Tracker reads from the events (interfaces.py of rasa_sdk 3.6).
READS_EVENTS = frozenset(
    {
        "events",
        "applied_events",
        "get_last_event_for",
        "last_executed_action_has",
        "events_after_latest_restart",
        "idx_after_latest_restart",
        "get_latest_input_channel",
    }
)


def _form_turns() -> Iterator[tuple[str, DialogueStateTracker]]:
    """Each recorded tracker with a form active, as ``FormAction.validate_slots`` hands it to
    the validation: with the requested slot, the form's run and a slot candidate appended."""
    for tracker in recorded_trackers(DOMAIN):
        form = tracker.active_loop_name
        if form not in DOMAIN.form_names:
            continue
        action = FormAction(form, ENDPOINT)
        requested = action.get_slot_to_fill(tracker) or "serial_number"
        candidate = [SlotSet(requested, tracker.latest_message.text or "x")]
        yield form, action._temporary_tracker(tracker, candidate, DOMAIN)


def _stored(event: Event, index: int, count: int, added: int) -> dict[str, Any]:
    """The event as stored; the ones a form adds are made anew each time: not their time."""
    stored = event.as_dict()
    if index >= count - added:
        stored.pop("timestamp")
    return stored


def _same_tracker(ours: DialogueStateTracker, rasas: DialogueStateTracker, added: int = 3) -> None:
    assert vars(ours).keys() == vars(rasas).keys()
    for name, value in vars(rasas).items():
        mine = vars(ours)[name]
        if name == "events":
            assert type(mine) is type(value) and mine.maxlen == value.maxlen
            assert [_stored(e, i, len(mine), added) for i, e in enumerate(mine)] == [
                _stored(e, i, len(value), added) for i, e in enumerate(value)
            ]
        elif name == "slots":
            assert {n: vars(s) for n, s in mine.items()} == {n: vars(s) for n, s in value.items()}
        else:
            assert mine == value, name


def test_a_copy_of_a_tracker_is_the_one_rasa_replays() -> None:
    """``copy_trackers_without_replaying``: every tracker of the recorded conversation, with a
    model and assistant id (a server's trackers have them; Rasa's copy has none); the copy
    changes apart from the original; an event at a time that is not a number goes Rasa's way."""
    original = speedups.ORIGINALS["copy_trackers_without_replaying"]
    for tracker in recorded_trackers(DOMAIN):
        tracker.model_id, tracker.assistant_id = "model-1", "assistant-1"
        ours = tracker.copy()
        _same_tracker(ours, original(tracker), added=0)
        slots, loop, count = (
            tracker.current_slot_values(),
            copy.copy(tracker.active_loop),
            len(tracker.events),
        )
        for event in (SlotSet("serial_number", "y"), ActiveLoop(None), ActionExecuted("x")):
            ours.update(event)
        assert (tracker.current_slot_values(), tracker.active_loop) == (slots, loop)
        assert len(tracker.events) == count
    untimely = recorded_trackers(DOMAIN)[3]
    untimely.events[1].timestamp = math.nan
    _same_tracker(untimely.copy(), original(untimely), added=0)


def test_the_validations_tracker_is_the_one_rasa_replays() -> None:
    """On each form turn (the conversation carrying a model and assistant id, as a server's
    does: Rasa's replay writes them into none of the events it adds), and a conversation with
    a restart in it (replayed from after it, as Rasa does)."""
    original = speedups.ORIGINALS["copy_the_tracker_for_form_validation"]
    checked = 0
    for tracker in recorded_trackers(DOMAIN):
        form = tracker.active_loop_name
        if form not in DOMAIN.form_names:
            continue
        tracker.model_id, tracker.assistant_id = "model-1", "assistant-1"
        action = FormAction(form, ENDPOINT)
        candidate = [SlotSet(action.get_slot_to_fill(tracker) or "serial_number", "x")]
        slots, loop = tracker.current_slot_values(), copy.copy(tracker.active_loop)
        ours = action._temporary_tracker(tracker, candidate, DOMAIN)
        _same_tracker(ours, original(action, tracker, candidate, DOMAIN))
        assert (tracker.current_slot_values(), tracker.active_loop) == (slots, loop)
        assert all(METADATA_MODEL_ID not in e.metadata for e in list(ours.events)[-3:])
        assert len(tracker.events) == len(ours.events) - 3  # the conversation's, unchanged
        checked += 1
        restarted = tracker.copy()
        restarted.update(Restarted())
        restarted.update(ActionExecuted(form))
        _same_tracker(
            action._temporary_tracker(restarted, candidate, DOMAIN),
            original(action, restarted, candidate, DOMAIN),
        )
    assert checked > 20


def _bodies(form: str, tracker: DialogueStateTracker) -> tuple[dict[str, Any], dict[str, Any]]:
    action = RemoteAction(f"validate_{form}", ENDPOINT)
    rasas = ORIGINAL(action, tracker, DOMAIN)
    ours = RemoteAction._action_call_format(action, tracker, DOMAIN)
    # What the action server receives: JSON.
    return json.loads(json.dumps(rasas)), json.loads(json.dumps(ours))


def _what_a_validation_reads(body: dict[str, Any]) -> dict[str, Any]:
    tracker = Tracker.from_dict(body["tracker"])
    read = {
        "sender_id": tracker.sender_id,
        "slots": tracker.slots,
        "latest_message": tracker.latest_message,
        "active_loop": tracker.active_loop,
        "latest_action_name": tracker.latest_action_name,
        "followup_action": tracker.followup_action,
        "paused": tracker.is_paused(),
        "slots_to_validate": tracker.slots_to_validate(),
        "domain": body.get("domain"),
        "next_action": body["next_action"],
    }
    # What rasa_sdk's FormValidationAction does next: adds its slots, validates them.
    tracker.add_slots([{"event": "slot", "name": "order_number", "value": "D01"}])
    read["slots_to_validate after extraction"] = tracker.slots_to_validate()
    return read


def test_a_form_validation_reads_the_same_from_the_latest_turn() -> None:
    turns = list(_form_turns())
    assert len(turns) > 20  # the recorded conversation's form turns, of three forms
    assert len({form for form, _ in turns}) == 3
    shorter = 0
    for form, tracker in turns:
        rasas, ours = _bodies(form, tracker)
        assert _what_a_validation_reads(ours) == _what_a_validation_reads(rasas)
        events = rasas["tracker"].pop("events")
        sent = ours["tracker"].pop("events")
        assert ours == rasas  # the rest of the body is Rasa's
        latest = max(i for i, e in enumerate(events) if e["event"] == "user")
        assert sent == events[latest:]
        shorter += len(sent) < len(events)
    assert shorter == len(turns)


def test_other_actions_and_a_conversation_without_a_message_get_everything() -> None:
    tracker = recorded_trackers(DOMAIN)[-1]
    for name in ("action_check_balance", "action_handoff", "validate_not_a_form"):
        action = RemoteAction(name, ENDPOINT)
        assert RemoteAction._action_call_format(action, tracker, DOMAIN) == ORIGINAL(
            action, tracker, DOMAIN
        )
    no_message = DialogueStateTracker.from_events(
        "recorded", [e for e in tracker.events if not isinstance(e, UserUttered)], DOMAIN.slots
    )
    action = RemoteAction("validate_balance_form", ENDPOINT)
    assert RemoteAction._action_call_format(action, no_message, DOMAIN) == ORIGINAL(
        action, no_message, DOMAIN
    )


def _functions() -> dict[str, tuple[bool, set[str]]]:
    """Every function and method of the actions package, by name: whether it reads the
    tracker's events itself, and the names it calls."""
    found: dict[str, tuple[bool, set[str]]] = {}
    for path in sorted((ROOT / "actions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                reads = any(
                    isinstance(n, ast.Attribute) and n.attr in READS_EVENTS for n in ast.walk(node)
                )
                calls = {
                    n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                    for n in ast.walk(node)
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
                }
                was = found.get(node.name, (False, set()))
                found[node.name] = (was[0] or reads, was[1] | calls)
    return found


def _reaches_events(name: str, functions: dict[str, tuple[bool, set[str]]]) -> bool:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in functions:
            continue
        seen.add(current)
        reads, calls = functions[current]
        if reads:
            return True
        todo.extend(calls)
    return False


def test_the_projects_form_validations_read_no_events() -> None:
    functions = _functions()
    # The check finds what reads events: the handoff's summary of the conversation does.
    assert _reaches_events("handoff_context", functions)
    validation_classes = [
        node
        for path in sorted((ROOT / "actions").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(base, ast.Name) and base.id in {"CardFormValidation", "FormValidationAction"}
            for base in node.bases
        )
    ]
    assert len(validation_classes) == 1 + len(DOMAIN.form_names)
    for cls in validation_classes:
        for method in cls.body:
            if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                assert not _reaches_events(method.name, functions), (cls.name, method.name)
