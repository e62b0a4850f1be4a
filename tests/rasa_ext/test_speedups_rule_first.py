"""``rule_first`` (bot/rasa_ext/rule_first.py) predicts what Rasa 3.6.21's whole predict graph
predicts. The trained model's predict graph, TED loaded, is run both ways on every tracker of
the recorded bench conversation (``data/bench_conversation.json``, the conversation before each
action Rasa ran), on each of those with an out-of-place message added (where no rule decides,
so the other policies run), and after a rejected action.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.engine.graph import ExecutionContext
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

import bot.tracker_store  # noqa: F401 - what Rasa imports: installs the speed-ups
from bot.rasa_ext import rule_first
from tests.rasa_ext.recorded import recorded_trackers, trained_model


@dataclass
class Graph:
    runner: DaskGraphRunner
    plan: rule_first.Plan
    domain: Domain
    nlu_runner: DaskGraphRunner


@pytest.fixture(scope="module")
def graph() -> Iterator[Graph]:
    with trained_model() as (storage, metadata):
        core = metadata.predict_schema.minimal_graph_schema([metadata.core_target])
        runner = DaskGraphRunner(core, storage, ExecutionContext(core, metadata.model_id), [])
        nlu = metadata.predict_schema.minimal_graph_schema([metadata.nlu_target])
        nlu_runner = DaskGraphRunner(nlu, storage, ExecutionContext(nlu, metadata.model_id), [])
        plan = rule_first.plan_for(runner)
        assert plan is not None
        yield Graph(runner, plan, metadata.domain, nlu_runner)


def _both_ways(graph: Graph, tracker: DialogueStateTracker) -> tuple[PolicyPrediction, ...]:
    target = graph.plan.ensemble
    whole = rule_first.ORIGINAL_RUN(
        graph.runner, {PLACEHOLDER_TRACKER: copy.deepcopy(tracker)}, [target]
    )
    asked_first = graph.runner.run({PLACEHOLDER_TRACKER: copy.deepcopy(tracker)}, [target])
    return whole[target], asked_first[target]


def _rule(graph: Graph, tracker: DialogueStateTracker) -> PolicyPrediction:
    rule = graph.plan.rule
    result = rule_first.ORIGINAL_RUN(graph.runner, {PLACEHOLDER_TRACKER: tracker}, [rule])
    prediction: PolicyPrediction = result[rule]
    return prediction


def test_the_plan_names_the_trained_graphs_policies(graph: Graph) -> None:
    plan = graph.plan
    uses = {name: node.uses.__name__ for name, node in graph.runner._graph_schema.nodes.items()}
    assert uses[plan.ensemble] == "DefaultPolicyPredictionEnsemble"
    assert uses[plan.rule] == "RulePolicy"
    assert sorted(uses[name] for name in plan.skippable) == ["MemoizationPolicy", "TEDPolicy"]
    assert plan.highest_skipped_priority == 3  # the memoization policy's; the rule's is 6
    # A graph without the ensemble (the NLU) is run as Rasa runs it.
    assert rule_first.plan_for(graph.nlu_runner) is None


def test_every_prediction_is_the_whole_graphs(graph: Graph) -> None:
    recorded = recorded_trackers(graph.domain)
    out_of_place = []
    for tracker in recorded:
        odd = tracker.copy()
        odd.update(ActionExecuted("action_listen"), graph.domain)
        odd.update(UserUttered("yes", {"name": "affirm", "confidence": 1.0}), graph.domain)
        out_of_place.append(odd)
    decided_by_rule = 0
    for tracker in recorded + out_of_place:
        whole, asked_first = _both_ways(graph, tracker)
        assert asked_first == whole
        assert asked_first.diagnostic_data == whole.diagnostic_data
        decided_by_rule += rule_first.decisive(graph.plan, _rule(graph, tracker), tracker)
    # Both paths were taken: most steps have a rule, "yes" out of the blue has none.
    assert len(recorded) > 80
    assert len(recorded) // 2 < decided_by_rule < len(recorded) + len(out_of_place)


def test_a_rejected_action_is_not_decided_by_the_rule_that_predicted_it(graph: Graph) -> None:
    tracker = next(
        t
        for t in recorded_trackers(graph.domain)
        if t.active_loop_name and rule_first.decisive(graph.plan, _rule(graph, t), t)
    )
    predicted = graph.domain.action_names_or_texts[_rule(graph, tracker).max_confidence_index]
    rejected = tracker.copy()
    rejected.update(ActionExecutionRejected(predicted), graph.domain)
    whole, asked_first = _both_ways(graph, rejected)
    assert asked_first == whole
    # The ensemble zeroes the rejected action: the rule is not decisive, the others ran.
    assert not rule_first.decisive(graph.plan, _rule(graph, rejected), rejected)


def test_the_graph_runner_of_every_server_asks_the_rule_first() -> None:
    assert DaskGraphRunner.run is rule_first.run
