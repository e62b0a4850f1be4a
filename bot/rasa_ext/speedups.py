"""Where the project makes Rasa 3.6.21's turn cheaper without changing what a turn does.

Each speed-up is one function below that replaces one piece of Rasa 3.6.21 (named in its
docstring) with code that returns the same results for the same inputs; each has a test in
tests/rasa_ext/test_speedups.py that runs the original and the replacement on real inputs and
compares, and a line in docs/performance.md (``make bench``) with its gain.

``apply()`` installs them all, once. It is called by ``bot/tracker_store.py`` when Rasa imports
that module for ``endpoints.yml`` (``make run``, and ``make run-scaled`` through
``bot/rasa_ext/tracker_store.py``): every Rasa server of the project loads it while starting,
before its first turn (the action server and the web app never run this code and do not
import it). A tracker store module rather than ``sitecustomize`` or a
pipeline component: Rasa imports it in the server and nowhere else, and the model and its
training stay as they are. Nothing else in the project patches Rasa while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import best_match
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

ORIGINALS: dict[str, Any] = {}
"""What each speed-up replaced, by its name: for the tests that compare the two."""


def cache_action_response_validator() -> None:
    """``RemoteAction._validate_action_result`` (rasa/core/actions/action.py, 3.6.21 line 699)
    calls ``jsonschema.validate(result, schema)`` on every action server response, and
    ``validate`` first checks the schema itself against JSON Schema's meta-schema: the large
    ``EVENTS_SCHEMA`` is re-checked on every call, most of the cost. Here the schema is checked
    once and its validator kept; a response is validated by the same validator class with the
    same ``best_match`` error, message and exception as before."""
    original = RemoteAction._validate_action_result
    ORIGINALS.setdefault("cache_action_response_validator", original)
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if best_match(validator.iter_errors(result)) is None:
            return True
        # Invalid: 3.6.21's own code raises its annotated ValidationError (a rare path).
        return bool(original(self, result))

    RemoteAction._validate_action_result = _validate_action_result


def cache_event_type_resolution() -> None:
    """``Event.resolve_by_type`` (rasa/shared/core/events.py, 3.6.21 line 374) walks every
    subclass of ``Event`` (``all_subclasses``, recursively, testing each for abstractness) for
    each event it deserialises: every event of every tracker the tracker store loads, every
    event an action returns. Here the class found for a type name is remembered; a name not
    found is looked up afresh each time (a class defined later is found as before), and the
    ``topic``, default and error cases are 3.6.21's own."""
    original = Event.resolve_by_type
    ORIGINALS.setdefault("cache_event_type_resolution", original)
    found: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = found.get(type_name)
        if cls is not None:
            return cls
        for candidate in all_subclasses(Event):
            if candidate.type_name == type_name:
                found[type_name] = candidate
                return candidate
        return original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)


SPEEDUPS: tuple[Callable[[], None], ...] = (
    cache_action_response_validator,
    cache_event_type_resolution,
)
_applied = False


def apply() -> None:
    """Install every speed-up (idempotent)."""
    global _applied
    if _applied:
        return
    for speedup in SPEEDUPS:
        speedup()
    _applied = True
