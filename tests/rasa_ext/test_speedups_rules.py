"""``match_rules_within_their_length`` and ``format_rule_states_only_for_a_debug_log``
(bot/rasa_ext/speedups.py): the trained rule policy, on every tracker of the recorded bench
conversation, finds the same rules and predicts the same with them as with Rasa 3.6.21's code;
and its debug line says the same whenever it is kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.engine.graph import ExecutionContext
from rasa.shared.core.domain import Domain

import bot.tracker_store  # noqa: F401 - what Rasa imports: installs the speed-ups
from bot.rasa_ext import speedups
from tests.rasa_ext.recorded import recorded_trackers, trained_model

ORIGINAL_KEYS = speedups.ORIGINALS["match_rules_within_their_length"]
ORIGINAL_FORMAT = speedups.ORIGINALS["format_rule_states_only_for_a_debug_log"]


@pytest.fixture(scope="module")
def policy() -> Iterator[tuple[RulePolicy, Domain]]:
    with trained_model() as (storage, metadata):
        schema = metadata.predict_schema
        name = next(n for n, node in schema.nodes.items() if node.uses is RulePolicy)
        node = schema.nodes[name]
        yield (
            RulePolicy.load(
                {**RulePolicy.get_default_config(), **node.config},
                storage,
                node.resource,
                ExecutionContext(schema, metadata.model_id),
            ),
            metadata.domain,
        )


@pytest.fixture
def structlog_at(request: pytest.FixtureRequest) -> Iterator[int]:
    """Rasa's structlog configuration at a level (``rasa/utils/log_utils.py``), then back."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(request.param))
    try:
        yield int(request.param)
    finally:
        structlog.configure(**saved)


def _as_rasa(policy: RulePolicy, call: Any) -> Any:
    """``call()`` with Rasa 3.6.21's two methods back in place."""
    ours = vars(RulePolicy)["_get_possible_keys"], vars(RulePolicy)["format_tracker_states"]
    RulePolicy._get_possible_keys = ORIGINAL_KEYS  # type: ignore[method-assign]
    RulePolicy.format_tracker_states = staticmethod(ORIGINAL_FORMAT)  # type: ignore[method-assign]
    try:
        return call()
    finally:
        RulePolicy._get_possible_keys, RulePolicy.format_tracker_states = ours  # type: ignore[method-assign]


def test_the_same_rules_fit_and_the_same_action_is_found(
    policy: tuple[RulePolicy, Domain],
) -> None:
    rule_policy, domain = policy
    found = 0
    for tracker in recorded_trackers(domain):
        states = rule_policy._prediction_states(
            tracker, domain, False, rule_only_data=rule_policy._get_rule_only_data()
        )
        for lookup in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
            ours = rule_policy._get_possible_keys(rule_policy.lookup[lookup], states)
            assert ours == ORIGINAL_KEYS(rule_policy, rule_policy.lookup[lookup], states)
            found += bool(ours)
        for by_text in (True, False):
            assert rule_policy._find_action_from_rules(tracker, domain, by_text) == _as_rasa(
                rule_policy, lambda: rule_policy._find_action_from_rules(tracker, domain, by_text)
            )
    assert found > 80  # rules fit most of the conversation: not a comparison of empty sets


@pytest.mark.parametrize(
    "structlog_at", [logging.DEBUG, logging.INFO, logging.WARNING], indirect=True
)
def test_the_states_are_formatted_only_for_a_debug_line_kept(
    policy: tuple[RulePolicy, Domain], structlog_at: int
) -> None:
    rule_policy, domain = policy
    states = rule_policy._prediction_states(recorded_trackers(domain)[-1], domain, False)
    formatted = RulePolicy.format_tracker_states(states)
    if structlog_at == logging.DEBUG:
        assert formatted == ORIGINAL_FORMAT(states) != ""
    else:
        assert formatted == ""
