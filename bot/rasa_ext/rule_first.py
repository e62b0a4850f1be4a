"""Ask the rule policy first: when a rule decides, the other policies are not run.

To predict the next action Rasa 3.6.21 runs the whole predict graph
(``MessageProcessor._predict_next_with_tracker`` → ``DaskGraphRunner.run`` with the ensemble,
``select_prediction``, as target): every policy predicts, then
``DefaultPolicyPredictionEnsemble`` keeps the most confident prediction, the policy of higher
priority on a tie (rasa/core/policies/ensemble.py, ``_pick_best_policy``). A rule that applies
predicts its action with confidence 1.0 at the rule policy's priority (6), which no prediction
of the memoization policy (priority 3) or TED (priority 1), at most 1.0 each, can beat. In the
bench's 40-turn conversations the rule policy made every one of some 2,000 predictions, while
TED's inference and the memoization policy's lookup were about a third of the server's
Python time (docs/performance.md).

Here the graph runs the rule policy alone first; when its prediction is decisive, the ensemble
is run on it with the other policies' outputs given as ``None`` (the ensemble keeps only
``PolicyPrediction`` arguments), which is the prediction the full graph makes; otherwise the
graph runs the other policies, the rule policy's prediction reused, and the ensemble decides as
always. Decisive means, as ``_pick_best_policy`` would see it:

- its highest confidence, after the ensemble zeroes an action the tracker says was just
  rejected (``ActionExecutionRejected``), is 1.0, the most any skipped policy can give;
- its priority is above every skipped policy's;
- every skipped policy is a memoization policy or a TED trained on intents (not on text only):
  they return no mandatory events and never flag a prediction as end-to-end or as made without
  user input, the flags by which the ensemble sets predictions aside.

A graph of any other shape (another policy, another ensemble, hooks, more than one rule
policy) is run as Rasa runs it. Tested in tests/rasa_ext/test_speedups_rule_first.py: the
same prediction as the full graph, TED loaded, for every step of the recorded bench
conversation, for each of those steps followed by an out-of-place message (no rule decides),
and after a rejected action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.memoization import MemoizationPolicy
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected
from rasa.shared.core.trackers import DialogueStateTracker

ORIGINAL_RUN = DaskGraphRunner.run
HIGHEST_CONFIDENCE = 1.0
"""The most a memoization policy or TED (softmax) gives an action."""


@dataclass(frozen=True)
class Plan:
    """Where the rule policy and the ensemble are in one predict graph."""

    ensemble: str
    rule: str
    skippable: tuple[str, ...]
    """The other policies' nodes, which a decisive rule makes unnecessary."""
    highest_skipped_priority: int
    domain: Domain


def _skippable(component: Any) -> bool:
    if isinstance(component, MemoizationPolicy):  # and its augmented subclass
        return True
    return isinstance(component, TEDPolicy) and not component.only_e2e


def plan_for(runner: DaskGraphRunner) -> Plan | None:
    """The plan for ``runner``'s graph, or None where the graph is not of the shape above."""
    schema = runner._graph_schema
    nodes = runner._instantiated_nodes
    ensembles = [
        name
        for name, node in schema.nodes.items()
        if issubclass(node.uses, DefaultPolicyPredictionEnsemble)
    ]
    if len(ensembles) != 1 or any(node._hooks for node in nodes.values()):
        return None
    ensemble = ensembles[0]
    # The ensemble's needs: policy0, policy1, ..., the domain (a provider's) and the tracker.
    needs = schema.nodes[ensemble].needs
    policies = [node for key, node in needs.items() if key not in ("domain", "tracker")]
    if not all(name in nodes for name in [*policies, needs.get("domain", "")]):
        return None
    components = {name: nodes[name]._component for name in policies}
    rules = [name for name, component in components.items() if type(component) is RulePolicy]
    skippable = tuple(name for name in policies if name not in rules)
    domain = getattr(nodes[needs["domain"]]._component, "_domain", None)
    if (
        len(rules) != 1
        or not all(_skippable(components[name]) for name in skippable)
        or not isinstance(domain, Domain)
    ):
        return None
    return Plan(
        ensemble=ensemble,
        rule=rules[0],
        skippable=skippable,
        highest_skipped_priority=max((components[name].priority for name in skippable), default=-1),
        domain=domain,
    )


def decisive(plan: Plan, prediction: PolicyPrediction, tracker: DialogueStateTracker) -> bool:
    """Whether the ensemble picks ``prediction`` whatever the skipped policies predict."""
    if prediction.policy_priority <= plan.highest_skipped_priority:
        return False
    probabilities = list(prediction.probabilities)
    last_action = next(
        (
            event
            for event in reversed(tracker.events)
            if isinstance(event, ActionExecutionRejected | ActionExecuted)
        ),
        None,
    )
    if isinstance(last_action, ActionExecutionRejected) and last_action.action_name:
        probabilities[plan.domain.index_for_action(last_action.action_name)] = 0.0
    return max(probabilities, default=0.0) >= HIGHEST_CONFIDENCE


_NO_PLAN = object()


def run(
    self: DaskGraphRunner,
    inputs: dict[str, Any] | None = None,
    targets: list[str] | None = None,
) -> dict[str, Any]:
    """``DaskGraphRunner.run``; a run for the ensemble's prediction asks the rule first."""
    plan = self.__dict__.get("_giftbot_rule_first", _NO_PLAN)
    if plan is _NO_PLAN:
        plan = plan_for(self)
        self._giftbot_rule_first = plan
    if (
        not isinstance(plan, Plan)
        or targets != [plan.ensemble]
        or set(inputs or {}) != {PLACEHOLDER_TRACKER}
    ):
        return ORIGINAL_RUN(self, inputs, targets)
    assert inputs is not None
    prediction = ORIGINAL_RUN(self, inputs, [plan.rule])[plan.rule]
    given: dict[str, Any] = {**inputs, plan.rule: prediction}
    if decisive(plan, prediction, inputs[PLACEHOLDER_TRACKER]):
        given.update(dict.fromkeys(plan.skippable))
    # A node's name among the inputs stands for its output (DaskGraphRunner._add_inputs_to_graph).
    return ORIGINAL_RUN(self, given, targets)


def install() -> None:
    """Ask the rule policy first in every predict graph of this process (idempotent)."""
    DaskGraphRunner.run = run
