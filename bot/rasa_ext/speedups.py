"""Where the project makes Rasa 3.6.21's turn cheaper without changing what a turn does.

Each speed-up is one function below (the two largest are modules of their own: asking the rule
policy first, ``rule_first.py``, and the past states carried forward, ``past_states.py``) that
replaces one piece of Rasa 3.6.21 (named in its docstring) with code that returns the same
results for the same inputs (one, ``send_form_validation_the_latest_turn``, sends the action
server less, and the test shows that what the receiving code reads of it is the same); each has
a test in tests/rasa_ext/test_speedups*.py that runs the original and the replacement on real
inputs and compares, and a line in docs/performance.md (``make bench``,
``scripts/bench/speedups.py``) with its gain. (The tracker store's own savings are methods of
bot/tracker_store.py.)

``apply()`` installs them all, once. It is called by ``bot/tracker_store.py`` when Rasa imports
that module for ``endpoints.yml`` (``make run``, and ``make run-scaled`` through
``bot/rasa_ext/tracker_store.py``): every Rasa server of the project loads it while starting,
before its first turn (the action server and the web app never run this code and do not
import it). A tracker store module rather than ``sitecustomize`` or a
pipeline component: Rasa imports it in the server and nowhere else, and the model and its
training stay as they are. The other changes installed there (the inbox, model loading) are
modules of their own in bot/rasa_ext/, each saying why.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any

import aiohttp
import rasa
import structlog
import ujson
from jsonschema import validators
from jsonschema.exceptions import best_match
from rasa.core.actions.action import RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, Event, Restarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_ext import past_states, rule_first
from bot.settings import get_settings

logger = logging.getLogger(__name__)

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


_prediction: ContextVar[dict[Hashable, Any] | None] = ContextVar(
    "giftbot_prediction_memo", default=None
)


@contextlib.contextmanager
def one_prediction() -> Iterator[None]:
    """The scope in which ``share_past_states_within_a_prediction`` remembers: one run of the
    policies on one tracker that nothing changes meanwhile."""
    token = _prediction.set({})
    try:
        yield
    finally:
        _prediction.reset(token)


def share_past_states_within_a_prediction() -> None:
    """To predict the next action, Rasa 3.6.21 runs every policy on the same tracker
    (``MessageProcessor._predict_next_with_tracker``, rasa/core/processor.py line 1097), and
    each policy turns the whole conversation into its past states again
    (``Domain.states_for_tracker_history``, rasa/shared/core/domain.py line 1333, through
    ``DialogueStateTracker.past_states``): the memoization policy and TED with the same
    arguments, the rule policy once or twice with others; each of those calls also works out
    the tracker's applied events (``DialogueStateTracker.applied_events``, trackers.py line
    478). Each pass replays every event of the conversation, so this is a cost that grows with
    it (a 40-turn conversation: about 250 events, 7-8 passes a turn).

    Here, during one prediction (and only then), the states are computed once per tracker,
    event list and arguments, both variants the policies ask for in one pass, going on from
    where the conversation's previous prediction left off (``past_states.both_variants``: a
    pass over the new events only, in this turn and the next), and each caller is given its
    own copy (``_copy_states``): the same states, with the same shared sub-states (a policy
    changes the last one in place), as a fresh call would make; the applied events likewise,
    once per tracker and event list. Nothing changes the tracker while the policies run, and
    the memo ends with the prediction."""
    original_states = Domain.states_for_tracker_history
    original_applied = DialogueStateTracker.applied_events
    original_predict = MessageProcessor._predict_next_with_tracker
    ORIGINALS.setdefault(
        "share_past_states_within_a_prediction",
        (original_states, original_applied, original_predict),
    )

    def states_for_tracker_history(
        self: Domain,
        tracker: DialogueStateTracker,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[State]:
        memo = _prediction.get()
        key = None
        if memo is not None:
            key = _states_key(
                self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data
            )
        if memo is None or key is None:
            return original_states(
                self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data
            )
        if key not in memo:
            # Both variants the policies ask for, in one pass over the conversation, kept as
            # made (no caller has them yet; each gets a copy); the tracker and its events
            # stay alive with the memo: no id in a key is reused.
            variants = past_states.both_variants(
                self, tracker, omit_unset_slots, rule_only_data, _rule_only_key(rule_only_data)
            )
            if get_settings().tracker_cache_check:
                for ignore, states in zip((False, True), variants, strict=True):
                    fresh = original_states(self, tracker, omit_unset_slots, ignore, rule_only_data)
                    if states != fresh:
                        logger.critical(past_states.HISTORY_DIFFERS)
                        raise RuntimeError(past_states.HISTORY_DIFFERS)
            alive = (tracker, list(tracker.events))
            for ignore, states in zip((False, True), variants, strict=True):
                other = _states_key(self, tracker, omit_unset_slots, ignore, rule_only_data)
                memo[other] = (alive, states, _plain(states))
        _, states, plain = memo[key]
        return _copy_states(states, plain)

    def applied_events(self: DialogueStateTracker) -> list[Event]:
        memo = _prediction.get()
        if memo is None:
            return original_applied(self)
        key = ("applied_events", id(self), _event_ids(self))
        if key not in memo:
            memo[key] = ((self, list(self.events)), original_applied(self))
        return list(memo[key][1])

    def _predict_next_with_tracker(self: MessageProcessor, tracker: DialogueStateTracker) -> Any:
        with one_prediction():
            return original_predict(self, tracker)

    Domain.states_for_tracker_history = states_for_tracker_history
    DialogueStateTracker.applied_events = applied_events
    MessageProcessor._predict_next_with_tracker = _predict_next_with_tracker


_LEAVES = (str, int, float, bool, type(None))


def _copy_states(states: list[State], plain: bool | None = None) -> list[State]:
    """``copy.deepcopy(states)``, faster for what Rasa makes (``plain``: a list of states, each
    a dict of sub-state dicts holding strings, numbers and tuples of them; found out here when
    not given): a sub-state shared by several states stays shared in the copy. Anything else
    is deep-copied."""
    if plain is None:
        plain = _plain(states)
    if not plain:
        return copy.deepcopy(states)
    copies: dict[int, Any] = {}
    copied: list[State] = []
    for state in states:
        new_state = copies.get(id(state))
        if new_state is None:
            new_state = {}
            for key, sub in state.items():
                new_sub = copies.get(id(sub))
                if new_sub is None:
                    new_sub = copies[id(sub)] = dict(sub)
                new_state[key] = new_sub
            copies[id(state)] = new_state
        copied.append(new_state)
    return copied


def _plain(states: list[State]) -> bool:
    """Whether ``states`` has the shape ``_copy_states`` copies by hand."""
    return type(states) is list and all(
        type(state) is dict
        and all(type(sub) is dict and all(map(_immutable, sub.values())) for sub in state.values())
        for state in states
    )


def _immutable(value: Any) -> bool:
    if type(value) is tuple:
        return all(map(_immutable, value))
    return type(value) in _LEAVES


def _event_ids(tracker: DialogueStateTracker) -> tuple[int, ...]:
    """The tracker's events by identity (the memo keeps them alive: no id is reused)."""
    return tuple(map(id, tracker.events))


def _rule_only_key(rule_only_data: dict[str, Any] | None) -> Hashable:
    """The rule policy's rule-only slots and loops, hashable (a TypeError: of a shape Rasa
    3.6.21 does not make)."""
    if rule_only_data is None:
        return None
    return tuple(sorted((k, tuple(v)) for k, v in rule_only_data.items()))


def _states_key(
    domain: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
    rule_only_data: dict[str, Any] | None,
) -> tuple[Hashable, ...] | None:
    try:
        rule_only = _rule_only_key(rule_only_data)
        key = (
            "states",
            id(domain),
            id(tracker),
            _event_ids(tracker),
            omit_unset_slots,
            ignore_rule_only_turns,
            rule_only,
        )
        hash(key)
    except TypeError:  # rule-only data of a shape Rasa 3.6.21 does not make: not remembered
        return None
    return key


def serialise_endpoint_requests_with_ujson() -> None:
    """``EndpointConfig.session`` (rasa/utils/endpoints.py, 3.6.21 line 105) makes the aiohttp
    session of each call to an endpoint (the action server's: 1-2 a turn), and aiohttp turns
    the body into JSON with the json module: the whole conversation, every event of it
    (``RemoteAction._action_call_format``), 170 kB at turn 40. Here the session serialises with
    ujson, 2-3 times faster on those bodies; the endpoint reads the same JSON values (ujson
    escapes ``/`` as ``\\/``, and floats are written to the same bits). A value ujson cannot
    write (an integer beyond 64 bits) is written by the json module, as before."""
    original = EndpointConfig.session
    ORIGINALS.setdefault("serialise_endpoint_requests_with_ujson", original)

    def session(self: EndpointConfig) -> aiohttp.ClientSession:
        made = original(self)
        made._json_serialize = dumps_json
        return made

    EndpointConfig.session = session


def dumps_json(value: Any) -> str:
    """``json.dumps(value)``'s JSON value, written by ujson where it can."""
    try:
        return str(ujson.dumps(value))
    except (TypeError, OverflowError):
        return json.dumps(value)


def send_form_validation_the_latest_turn() -> None:
    """``RemoteAction._action_call_format`` (rasa/core/actions/action.py, 3.6.21 line 651)
    sends the action server the whole conversation, every event of it, on every call: a
    form's validation is called once or twice on each of the form's turns, and at turn 40 the
    body is 170 kB, written here and parsed there each time. Here a form's validation action
    (``validate_<form>``) is sent the events from the latest message on; every other field
    of the body is Rasa's, and every other action gets the whole conversation as before.

    The same answer: a form validation reads the slots, the latest message and the active
    loop (fields of their own, from the whole conversation), and of the events only the slot
    candidates at their end (rasa_sdk 3.6's ``Tracker.slots_to_validate``, which stops at the
    first event that is not a slot, the latest message at the earliest); the project's own
    (actions/forms.py and the forms' modules) read no events (tests/rasa_ext/
    test_speedups_action_calls.py checks both, on every form turn of the recorded
    conversation). A conversation with no message yet is sent whole."""
    original = RemoteAction._action_call_format
    ORIGINALS.setdefault("send_form_validation_the_latest_turn", original)

    def _action_call_format(
        self: RemoteAction, tracker: DialogueStateTracker, domain: Domain
    ) -> dict[str, Any]:
        name = self.name()
        if not name.startswith("validate_") or name[len("validate_") :] not in domain.form_names:
            return original(self, tracker, domain)
        state = tracker.current_state(EventVerbosity.NONE)
        latest = _latest_message_at(tracker)
        state["events"] = [e.as_dict() for e in itertools.islice(tracker.events, latest, None)]
        result = {
            "next_action": name,
            "sender_id": tracker.sender_id,
            "tracker": state,
            "version": rasa.__version__,
        }
        if (
            not self._is_selective_domain_enabled()
            or domain.does_custom_action_explicitly_need_domain(name)
        ):
            result["domain"] = domain.as_dict()
        return result

    RemoteAction._action_call_format = _action_call_format


def _latest_message_at(tracker: DialogueStateTracker) -> int:
    """The position of the tracker's latest message among its events (0: none yet, so that
    every event is sent)."""
    for back, event in enumerate(reversed(tracker.events)):
        if isinstance(event, UserUttered):
            return len(tracker.events) - 1 - back
    return 0


def copy_trackers_without_replaying() -> None:
    """``DialogueStateTracker.copy`` (rasa/shared/core/trackers.py, 3.6.21 line 620) makes a
    new tracker (``init_copy``) and replays every event of the conversation into it; the
    processor copies the conversation before each action it runs (``_run_action``,
    processor.py line 980: about 2.4 a turn) and a form before it first runs (forms.py line
    733). Here the tracker is copied as it stands (``past_states.fork``), made as
    ``init_copy`` makes one (no model or assistant id, no sender source). The same tracker:
    one is its events replayed (Rasa 3.6.21 changes a tracker only through events). A
    conversation with an event whose time is not a number (the replay stops there) and any
    subclass (the training's trackers) are copied as before."""
    original = DialogueStateTracker.copy
    ORIGINALS.setdefault("copy_trackers_without_replaying", original)

    def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
        if type(self) is not DialogueStateTracker or not all(
            event.timestamp <= math.inf for event in self.events
        ):
            return original(self)
        copied = _made_anew(self)
        copied.sender_id = self.sender_id or ""
        return copied

    DialogueStateTracker.copy = copy_tracker


def _made_anew(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """``past_states.fork`` of a tracker, as Rasa makes a new one (``init_copy``,
    ``from_events``): no model or assistant id (``update`` would write them into the events
    applied to it), no sender source."""
    copied = past_states.fork(tracker)
    copied.model_id = copied.assistant_id = copied.sender_source = None
    return copied


def copy_the_tracker_for_form_validation() -> None:
    """``FormAction._temporary_tracker`` (rasa/core/actions/forms.py, 3.6.21 line 283) makes
    the tracker a form's validation is called with by replaying every event of the
    conversation into a new tracker (``DialogueStateTracker.from_events``), then the few it
    adds: a pass over the whole conversation, once or twice on each of a form's turns. Here
    the conversation's tracker is copied as it stands (``past_states.fork``) and only the
    added events are applied. The same tracker: one is its events replayed (Rasa 3.6.21
    changes a tracker only through events), made as ``from_events`` makes it (no model or
    assistant id, which ``update`` would write into the added events, no history limit, no
    sender source). A conversation with a restart (``from_events`` is given the events after
    it) or a history limit is replayed as before."""
    original = FormAction._temporary_tracker
    ORIGINALS.setdefault("copy_the_tracker_for_form_validation", original)

    def _temporary_tracker(
        self: FormAction,
        current_tracker: DialogueStateTracker,
        additional_events: list[Event],
        domain: Domain,
    ) -> DialogueStateTracker:
        if (
            current_tracker._max_event_history is not None
            or current_tracker.is_rule_tracker
            or any(isinstance(event, Restarted) for event in current_tracker.events)
        ):
            return original(self, current_tracker, additional_events, domain)
        tracker = _made_anew(current_tracker)
        added = [
            SlotSet(REQUESTED_SLOT, self.get_slot_to_fill(current_tracker)),
            ActionExecuted(self.name()),
            *additional_events,
        ]
        for event in added:
            tracker.update(event)
        return tracker

    FormAction._temporary_tracker = _temporary_tracker


def match_rules_within_their_length() -> None:
    """``RulePolicy._get_possible_keys`` (rasa/core/policies/rule_policy.py, 3.6.21 line 913)
    narrows the trained rules down to those that fit the conversation, going back one state at
    a time through every state of it, and for each rule left parses the rule (its key is JSON)
    again at each state: past a rule's own length ``_is_rule_applicable`` says yes without
    looking (line 886), so the rest of a long conversation costs a parse per rule per state,
    twice per prediction. Here the walk stops once it is past the longest rule left (from
    there on every rule left stays); each step is Rasa's own ``_is_rule_applicable``."""
    original = RulePolicy._get_possible_keys
    ORIGINALS.setdefault("match_rules_within_their_length", original)
    lengths: dict[str, int] = {}

    def length(key: str) -> int:
        found = lengths.get(key)
        if found is None:
            found = lengths[key] = len(RulePolicy._rule_key_to_state(key))
        return found

    def _get_possible_keys(
        self: RulePolicy, lookup: dict[str, str], states: list[State]
    ) -> set[str]:
        possible_keys = set(lookup.keys())
        longest = max(map(length, possible_keys), default=0)
        for i, state in enumerate(reversed(states)):
            if i >= longest:
                break
            possible_keys = {
                key for key in possible_keys if self._is_rule_applicable(key, i, state)
            }
            longest = max(map(length, possible_keys), default=0)
        return possible_keys

    RulePolicy._get_possible_keys = _get_possible_keys


def format_rule_states_only_for_a_debug_log() -> None:
    """``RulePolicy._find_action_from_rules`` (rule_policy.py, 3.6.21 line 1025) formats every
    past state of the conversation as text on each call, for one debug log line, also when the
    server logs nothing below INFO (Rasa's structlog then drops the line, not the work). Here
    the text is made only when that line is kept (structlog's level, ``rasa/utils/
    log_utils.py``); ``format_tracker_states`` is used by nothing else in the rule policy."""
    original = RulePolicy.format_tracker_states
    ORIGINALS.setdefault("format_rule_states_only_for_a_debug_log", original)

    def format_tracker_states(states: list[dict]) -> str:
        if _debug_dropped():
            return ""
        return str(original(states))

    RulePolicy.format_tracker_states = staticmethod(format_tracker_states)


def _debug_dropped() -> bool:
    """Whether structlog is configured, as Rasa configures it, to drop debug lines."""
    wrapper = structlog.get_config().get("wrapper_class")
    return any(
        wrapper is structlog.make_filtering_bound_logger(level)
        for level in (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    )


def ask_the_rule_policy_first() -> None:
    """``DaskGraphRunner.run`` (rasa/engine/runner/dask.py, 3.6.21 line 82) for a prediction of
    the next action: the rule policy first, the other policies only when no rule decides. A
    module of its own, bot/rasa_ext/rule_first.py, says why it is the same prediction."""
    ORIGINALS.setdefault("ask_the_rule_policy_first", rule_first.ORIGINAL_RUN)
    rule_first.install()


SPEEDUPS: tuple[Callable[[], None], ...] = (
    cache_action_response_validator,
    cache_event_type_resolution,
    share_past_states_within_a_prediction,
    ask_the_rule_policy_first,
    serialise_endpoint_requests_with_ujson,
    send_form_validation_the_latest_turn,
    copy_trackers_without_replaying,
    copy_the_tracker_for_form_validation,
    match_rules_within_their_length,
    format_rule_states_only_for_a_debug_log,
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
