"""The sentence-vector intent classifier trains, survives a save and load unchanged, and turns
away what is far from every in-scope example."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.sentence_classifier import SentenceIntentClassifier
from bot.nlu.sentence_encoder import SentenceEncoderFeaturizer

EXAMPLES = {
    "check_balance": [
        "how much is on this gift card",
        "what is my gift card worth",
        "check the value of a card without redeeming it",
        "how much money does this card hold",
    ],
    "redeem_card": [
        "add this gift card to my account",
        "redeem my gift card",
        "put the card on my balance",
        "i want to claim a gift card",
    ],
    "out_of_scope": [
        "what's the weather tomorrow",
        "tell me a joke",
        "book a flight to rome",
        "how do i boil an egg",
    ],
}


def context(name: str) -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), node_name=name)


@pytest.fixture(scope="module")
def featurizer() -> SentenceEncoderFeaturizer:
    return SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "encoder")


def parse(
    featurizer: SentenceEncoderFeaturizer, classifier: SentenceIntentClassifier, text: str
) -> Message:
    message = Message(data={TEXT: text})
    featurizer.process([message])
    classifier.process([message])
    return message


def test_it_learns_saves_loads_and_rejects_the_far_away(
    tmp_path: Path, featurizer: SentenceEncoderFeaturizer
) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("sentence_intents")
    config = {**SentenceIntentClassifier.get_default_config(), "min_similarity": 0.3}
    trained = SentenceIntentClassifier.create(config, storage, resource, context("classifier"))
    messages = [
        Message(data={TEXT: text, "intent": intent})
        for intent, texts in EXAMPLES.items()
        for text in texts
    ]
    featurizer.process_training_data(TrainingData(messages))
    trained.train(TrainingData(messages))
    loaded = SentenceIntentClassifier.load(config, storage, resource, context("classifier"))

    for classifier in (trained, loaded):
        value = parse(featurizer, classifier, "what's the value of the card i was given")
        assert value.get("intent")["name"] == "check_balance"
        redeem = parse(featurizer, classifier, "please redeem this card onto my account")
        assert redeem.get("intent")["name"] == "redeem_card"
        far = parse(featurizer, classifier, "the migration patterns of arctic terns")
        assert far.get("intent") == {"name": "out_of_scope", "confidence": 1.0}
        ranking = far.get("intent_ranking")
        assert ranking[0]["name"] == "out_of_scope" and len(ranking) == 3

    text = "how much is left on a card a friend gave me"
    assert parse(featurizer, trained, text).get("intent_ranking") == parse(
        featurizer, loaded, text
    ).get("intent_ranking")


def test_a_message_without_text_is_left_alone(
    tmp_path: Path, featurizer: SentenceEncoderFeaturizer
) -> None:
    classifier = SentenceIntentClassifier.create(
        SentenceIntentClassifier.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("sentence_intents"),
        context("classifier"),
    )
    message = Message(data={"intent": {"name": "greet", "confidence": 1.0}})
    classifier.process([message])
    assert message.get("intent") == {"name": "greet", "confidence": 1.0}
