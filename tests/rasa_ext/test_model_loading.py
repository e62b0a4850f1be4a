"""A TensorFlow model loaded to serve (bot/rasa_ext/model_loading.py) holds the very weights
Rasa 3.6.21's own load gives it, and the assistant parses and predicts the same: the trained
model (models/giftbot.tar.gz: TED, and any other TensorFlow component config.yml names) loaded
both ways here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from rasa.core.agent import Agent
from rasa.engine.constants import PLACEHOLDER_TRACKER
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.tensorflow.models import RasaModel

from bot.rasa_ext import model_loading
from tests.servers import MODEL, ROOT

MESSAGES = [
    "hi",
    "how much is on my gift card? I don't want to redeem it",
    "my claim code doesn't work",
    "the code on my card is scratched off, serial 1712345678901234567",
    "my order number is D01-4826153-7730941",
    "where do I find the serial number",
    "I want to talk to a human",
    "what's the weather like in Paris",
    "yes pls",
    "nah",
]


def load_agent(load: Any) -> Agent:
    """The trained assistant, with ``load`` as ``RasaModel.load`` while it loads."""
    before = RasaModel.__dict__["load"]
    RasaModel.load = classmethod(load)  # type: ignore[assignment,method-assign]
    try:
        return Agent.load(str(MODEL))
    finally:
        RasaModel.load = before  # type: ignore[method-assign]


def tf_models(agent: Agent) -> dict[str, RasaModel]:
    """Each TensorFlow model of the loaded graph, by its graph node."""
    nodes = agent.processor.graph_runner._instantiated_nodes  # type: ignore[union-attr]
    found = {}
    for name, node in nodes.items():
        model = getattr(node._component, "model", None)
        if isinstance(model, RasaModel):
            found[name] = model
    return found


def weights(model: RasaModel) -> dict[str, np.ndarray]:
    return {variable.name: variable.numpy() for variable in model.weights}


async def behaviour(agent: Agent) -> list[Any]:
    """Every parse, and after each message of one conversation the prediction the assistant
    makes and each TensorFlow policy's own (the rule policy decides most steps alone:
    bot/rasa_ext/rule_first.py)."""
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    policies = sorted(name for name in tf_models(agent) if "Policy" in name)
    assert policies, "no TensorFlow policy in the graph"
    seen: list[Any] = []
    tracker = DialogueStateTracker.from_events(
        "loading", [ActionExecuted("action_session_start"), SessionStarted()], agent.domain.slots
    )
    tracker.update(ActionExecuted("action_listen"))
    for text in MESSAGES:
        parsed = await agent.parse_message(text)
        seen.append(parsed)
        tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        prediction = agent.processor._predict_next_with_tracker(tracker)
        seen.append((prediction.policy_name, list(prediction.probabilities)))
        own = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=policies)
        seen.extend((name, list(own[name].probabilities)) for name in policies)
        tracker.update(ActionExecuted("action_listen"))
    return seen


@pytest.fixture(scope="module")
def agents() -> Iterator[tuple[Agent, Agent]]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make test`, which trains it first")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the config names the spaCy pipeline by its path in the project
        rasas = load_agent(model_loading.ORIGINAL_LOAD)
        ours = load_agent(model_loading._load)
        yield rasas, ours


def test_every_served_model_has_rasas_weights(agents: tuple[Agent, Agent]) -> None:
    rasas, ours = (tf_models(agent) for agent in agents)
    assert set(ours) == set(rasas)
    assert any("TEDPolicy" in name for name in ours), sorted(ours)
    for name, model in ours.items():
        expected, got = weights(rasas[name]), weights(model)
        assert got and set(got) <= set(expected), name
        for variable, value in got.items():
            np.testing.assert_array_equal(value, expected[variable], err_msg=variable)


def test_the_assistant_parses_and_predicts_the_same(agents: tuple[Agent, Agent]) -> None:
    rasas, ours = (asyncio.run(behaviour(agent)) for agent in agents)
    assert ours == rasas
