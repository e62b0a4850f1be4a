"""``share_past_states_within_a_prediction`` (bot/rasa_ext/speedups.py) gives the policies what
Rasa 3.6.21 gives them. On every tracker of the recorded bench conversation (the conversation as
it stood before each action Rasa ran, ``data/bench_conversation.json``): the same past states,
shared sub-states included, for each call the policies make; and, from the trained model, the
same predictions of the memoization and rule policies and the same input to TED's network
(its prediction is a function of that input) with the speed-up as with Rasa's own code.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.processor import MessageProcessor
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.engine.graph import ExecutionContext
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.constants import SLOTS, USER
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, EntitiesAdded, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.features import Features

import bot.tracker_store  # noqa: F401 - what Rasa imports: installs the speed-ups
from bot.rasa_ext import past_states, speedups
from bot.settings import get_settings
from tests.rasa_ext.recorded import ROOT, recorded_trackers, trained_model

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
ORIGINAL_STATES, ORIGINAL_APPLIED, ORIGINAL_PREDICT = speedups.ORIGINALS[
    "share_past_states_within_a_prediction"
]
# What the trained rule policy reports (its rule_only_data.json).
RULE_ONLY = {
    "rule_only_slots": ["handoff_offered", "contact_requested"],
    "rule_only_loops": ["action_two_stage_fallback"],
}
# The calls one prediction makes, in the ensemble's order: (omit_unset_slots,
# ignore_rule_only_turns) for the memoization policy, the rule policy (twice after a message:
# by text, then by intent) and TED.
CALLS = [(False, True), (False, False), (False, False), (False, True)]


def _sharing(states: list[State]) -> list[list[tuple[str, int]]]:
    """Which earlier state each sub-state object is shared with (Rasa reuses the previous
    message's sub-state for the turns after it; a policy then edits the last one in place)."""
    seen: dict[int, int] = {}
    shape = []
    for number, state in enumerate(states):
        shape.append([(key, seen.setdefault(id(sub), number)) for key, sub in state.items()])
    return shape


def test_each_call_in_a_prediction_gets_the_states_rasa_computes() -> None:
    trackers = recorded_trackers(DOMAIN)
    assert len(trackers) > 80  # 40 turns
    for tracker, calls in itertools.product(trackers, (CALLS, CALLS[::-1])):
        with speedups.one_prediction():
            for omit, ignore in calls:
                got = DOMAIN.states_for_tracker_history(tracker, omit, ignore, RULE_ONLY)
                expected = ORIGINAL_STATES(DOMAIN, tracker, omit, ignore, RULE_ONLY)
                assert got == expected
                assert _sharing(got) == _sharing(expected)
                # What a policy does to its states (the last message's text or intent is
                # dropped in place) does not reach the next policy's.
                if got and USER in got[-1]:
                    got[-1][USER].clear()
            assert tracker.applied_events() == ORIGINAL_APPLIED(tracker)


def test_within_one_prediction_the_states_are_computed_once() -> None:
    """What saves the time: the second call is answered from the first. (It may be, because
    nothing changes a tracker while the policies predict; an event changed in place here, as
    no policy does, shows the answer came from the memo.)"""
    tracker = recorded_trackers(DOMAIN)[-1]
    with speedups.one_prediction():
        first = DOMAIN.states_for_tracker_history(tracker, False, False, RULE_ONLY)
        latest = next(e for e in reversed(tracker.events) if isinstance(e, UserUttered))
        latest.intent = {"name": "changed_in_place", "confidence": 1.0}
        assert DOMAIN.states_for_tracker_history(tracker, False, False, RULE_ONLY) == first
    # Outside a prediction nothing is remembered.
    assert DOMAIN.states_for_tracker_history(tracker, False, False, RULE_ONLY) != first


def _loaded(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """The tracker as the tracker store hands it out next turn: every event a fresh copy,
    deserialised from what was stored."""
    events = [Event.from_parameters(json.loads(json.dumps(e.as_dict()))) for e in tracker.events]
    return DialogueStateTracker.from_events(tracker.sender_id, events, DOMAIN.slots)


def _predicting(tracker: DialogueStateTracker) -> list[State]:
    with speedups.one_prediction():
        return DOMAIN.states_for_tracker_history(tracker, False, False, RULE_ONLY)


def test_a_conversation_goes_on_from_its_previous_prediction() -> None:
    """``past_states``: each prediction replays only the events after the previous one's, in
    the same turn (the same event objects) and the next (fresh copies of them, as loaded);
    the states are Rasa's either way. An event changed in place shows which events were not
    replayed again (no code changes an event once made; here it is done on purpose)."""
    past_states.forget()
    trackers = recorded_trackers(DOMAIN)
    for number, tracker in enumerate(trackers):
        tracker = _loaded(tracker) if number % 3 == 0 else tracker
        for ignore in (False, True):
            with speedups.one_prediction():
                got = DOMAIN.states_for_tracker_history(tracker, False, ignore, RULE_ONLY)
            expected = ORIGINAL_STATES(DOMAIN, tracker, False, ignore, RULE_ONLY)
            assert got == expected
            assert _sharing(got) == _sharing(expected)

    last = trackers[-1]
    first_message = next(e for e in last.events if isinstance(e, UserUttered))
    states = _predicting(last)
    first_message.intent = {"name": "changed_in_place", "confidence": 1.0}
    assert _predicting(last) == states  # not replayed: the history went on
    past_states.forget()
    assert _predicting(last) != states  # replayed afresh: the change shows


def test_a_conversation_that_differs_from_its_history_is_replayed_afresh() -> None:
    """Another event anywhere in the conversation (the store redacted it, a rewind, a
    restart), a shorter conversation, or the trackers in any order: Rasa's states."""
    past_states.forget()
    trackers = recorded_trackers(DOMAIN)
    assert _predicting(trackers[-1]) == ORIGINAL_STATES(
        DOMAIN, trackers[-1], False, False, RULE_ONLY
    )
    changed = trackers[-1].copy()
    first_message = next(e for e in changed.events if isinstance(e, UserUttered))
    index = list(changed.events).index(first_message)
    other = UserUttered(
        "[redacted]",
        {"name": "nlu_fallback", "confidence": 1.0},
        timestamp=first_message.timestamp,
    )
    changed = DialogueStateTracker.from_events(
        "recorded",
        [*list(changed.events)[:index], other, *list(changed.events)[index + 1 :]],
        DOMAIN.slots,
    )
    assert _predicting(changed) == ORIGINAL_STATES(DOMAIN, changed, False, False, RULE_ONLY)
    assert _predicting(changed) != ORIGINAL_STATES(DOMAIN, trackers[-1], False, False, RULE_ONLY)
    for tracker in random.Random(7).sample(trackers, len(trackers)):
        assert _predicting(tracker) == ORIGINAL_STATES(DOMAIN, tracker, False, False, RULE_ONLY)


def test_an_event_that_changes_the_latest_message_in_place_is_seen() -> None:
    """Rasa's ``EntitiesAdded`` adds to the latest message itself (as does
    ``DefinePrevUserUtteredFeaturization``): a state read from that message before it is not
    what a pass after it reads; the history holding one starts again."""
    past_states.forget()
    tracker = next(
        t
        for t in recorded_trackers(DOMAIN)
        if isinstance(t.events[-2], UserUttered) and t.latest_message.entities == []
    )
    tracker.update(ActionExecuted("action_listen"))  # a state read from the message
    _predicting(tracker)
    tracker.update(EntitiesAdded([{"entity": "serial_number", "value": "1", "start": 0, "end": 1}]))
    tracker.update(ActionExecuted("action_listen"))
    got = _predicting(tracker)
    assert got == ORIGINAL_STATES(DOMAIN, tracker, False, False, RULE_ONLY)
    assert "serial_number" in got[-2][USER]["entities"]  # read after the change


def test_a_forms_turn_goes_on_from_where_the_form_last_ran() -> None:
    """When a form runs again, Rasa takes the turn's listen and message back out of the
    applied events; the history goes back to just after the form's previous run, with the
    conversation as it was then (a slot set since is not set there), and on from there."""
    past_states.forget()
    after_form = next(
        t
        for t in recorded_trackers(DOMAIN)
        if t.latest_action_name in DOMAIN.form_names
        and not isinstance(t.events[-1], ActionExecuted)
        and not t.get_slot("redeem_offered")
    )
    answered = after_form.copy()
    for event in (
        ActionExecuted("action_listen"),
        UserUttered("D01-0000000-0000000", {"name": "inform", "confidence": 1.0}),
        SlotSet("redeem_offered", True),  # a slot the states show
        ActionExecuted("utter_ok_stopped"),
    ):
        answered.update(event)
    assert _predicting(answered) == ORIGINAL_STATES(DOMAIN, answered, False, False, RULE_ONLY)
    taken_out = after_form.copy()
    taken_out.update(ActionExecuted("utter_ok_stopped"))
    history = past_states._histories[next(iter(past_states._histories))]
    assert history.mark is not None and history.mark.events == len(after_form.applied_events())
    got = _predicting(taken_out)
    assert got == ORIGINAL_STATES(DOMAIN, taken_out, False, False, RULE_ONLY)
    assert _predicting(answered)[-1][SLOTS]["redeem_offered"] == (1.0, 1.0)
    assert all("redeem_offered" not in state.get(SLOTS, {}) for state in got)


def test_with_the_check_on_a_history_that_differs_fails_the_prediction(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The test suite's servers run with ``GIFTBOT_TRACKER_CACHE_CHECK``: every prediction's
    states from the history are compared with Rasa's own pass, and a difference fails it."""
    past_states.forget()
    trackers = recorded_trackers(DOMAIN)
    monkeypatch.setenv("GIFTBOT_TRACKER_CACHE_CHECK", "1")
    get_settings.cache_clear()
    try:
        assert _predicting(trackers[-2]) == ORIGINAL_STATES(
            DOMAIN, trackers[-2], False, False, RULE_ONLY
        )  # checked, the same
        (history,) = past_states._histories.values()
        history.every[1] = {USER: {"intent": "changed_in_place"}}
        with pytest.raises(RuntimeError, match="differ from Rasa's own pass"):
            _predicting(trackers[-1])
        assert past_states.HISTORY_DIFFERS in caplog.text
    finally:  # the other tests' settings stay as they were
        monkeypatch.delenv("GIFTBOT_TRACKER_CACHE_CHECK")
        get_settings.cache_clear()
        past_states.forget()


class RecordingRunner(DaskGraphRunner):
    """Rasa's graph runner, noting whether each run was inside a prediction's memo."""

    within: list[bool] = []

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.within.append(speedups._prediction.get() is not None)
        return super().run(*args, **kwargs)


@dataclass
class Trained:
    """The trained model's conversation part: the memoization and rule policies (run as
    Rasa runs them, by its graph runner), and TED's featurisation of a tracker (what its
    network is given; loading the network itself would take minutes on this machine)."""

    runner: RecordingRunner
    memo: str
    rule: str
    ted: TEDPolicy
    domain: Domain


@pytest.fixture(scope="module")
def trained() -> Iterator[Trained]:
    with trained_model() as (storage, metadata):
        schema = metadata.predict_schema
        nodes = {node.uses.__name__: name for name, node in schema.nodes.items()}
        memo, rule, ted = nodes["MemoizationPolicy"], nodes["RulePolicy"], nodes["TEDPolicy"]
        policies = schema.minimal_graph_schema([memo, rule, "rule_only_data_provider"])
        context = ExecutionContext(policies, metadata.model_id)
        runner = RecordingRunner(policies, storage, context, hooks=[])
        ted_node = schema.nodes[ted]
        with storage.read_from(ted_node.resource) as path:
            utilities = TEDPolicy._load_model_utilities(path)
            featurizer = TrackerFeaturizer.load(path)
        ted_policy = TEDPolicy(
            {**TEDPolicy.get_default_config(), **ted_node.config},
            storage,
            ted_node.resource,
            context,
            featurizer=featurizer,
            fake_features=utilities["fake_features"],
            entity_tag_specs=utilities["entity_tag_specs"],
        )
        yield Trained(runner, memo, rule, ted_policy, metadata.domain)


def _features(batch: list[list[dict[str, list[Features]]]]) -> list[Any]:
    return [
        [
            {
                attribute: [
                    (f.type, f.attribute, f.origin, f.is_sparse(), f.features.tolist())
                    if not f.is_sparse()
                    else (f.type, f.attribute, f.origin, True, f.features.toarray().tolist())
                    for f in features
                ]
                for attribute, features in turn.items()
            }
            for turn in example
        ]
        for example in batch
    ]


def _predict(trained: Trained, tracker: DialogueStateTracker) -> dict[str, Any]:
    """The three policies on one tracker, in one prediction as the processor makes it."""
    results = trained.runner.run(
        inputs={PLACEHOLDER_TRACKER: copy.deepcopy(tracker)},
        targets=[trained.memo, trained.rule, "rule_only_data_provider"],
    )
    ted_input = trained.ted._featurize_tracker(
        copy.deepcopy(tracker), trained.domain, None, results["rule_only_data_provider"]
    )
    return {
        "memoization": results[trained.memo],
        "rule": results[trained.rule],
        "ted input": _features(ted_input),
    }


def test_the_policies_predict_what_they_predict_with_rasas_code(trained: Trained) -> None:
    trackers = recorded_trackers(trained.domain)
    decided = {"memoization": 0, "rule": 0}
    for tracker in trackers:
        with speedups.one_prediction():
            with_speedup = _predict(trained, tracker)
        as_rasa = _predict(trained, tracker)
        assert with_speedup == as_rasa
        for policy in decided:
            decided[policy] += max(with_speedup[policy].probabilities) > 0.5
    # Each policy recognised some of the conversation: the comparison is not of empty answers.
    assert min(decided.values()) > 0


def test_the_processor_runs_the_policies_within_one_prediction(trained: Trained) -> None:
    """``MessageProcessor._predict_next_with_tracker`` (what Rasa calls before each action)."""
    processor = object.__new__(MessageProcessor)  # its graph runner and model's target only
    processor.graph_runner = trained.runner
    processor.model_metadata = SimpleNamespace(core_target=trained.rule)
    tracker = recorded_trackers(trained.domain)[-1]
    RecordingRunner.within.clear()
    prediction = MessageProcessor._predict_next_with_tracker(processor, copy.deepcopy(tracker))
    assert RecordingRunner.within == [True]
    assert prediction == ORIGINAL_PREDICT(processor, copy.deepcopy(tracker))
    assert RecordingRunner.within == [True, False]


def test_states_of_another_shape_are_deep_copied() -> None:
    """``_copy_states`` copies what Rasa makes by hand and anything else with ``deepcopy``."""
    shared = {"intent": "greet", "entities": ("email",)}
    made = [{USER: shared}, {USER: shared, "slots": {"x": (1.0, 0.0)}}]
    other = [{USER: {"intent": "greet", "entities": ["a list"]}}]
    for states in (made, other):
        copied = speedups._copy_states(states)
        assert copied == states and _sharing(copied) == _sharing(states)
        assert all(a[USER] is not b[USER] for a, b in zip(copied, states, strict=True))
    assert other[0][USER]["entities"] is not speedups._copy_states(other)[0][USER]["entities"]
