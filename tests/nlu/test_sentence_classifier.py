"""The sentence-vector intent classifier trains, survives a save and load unchanged, turns
away what is far from every in-scope example, answers the FAQ as Rasa's ResponseSelector
would, and reads the pipeline's character n-grams beside the sentence vector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT_RESPONSE_KEY, TEXT
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


def new_classifier(
    tmp_path: Path,
) -> tuple[SentenceIntentClassifier, Callable[[], SentenceIntentClassifier]]:
    """A classifier to train, and how to load it back from its storage once trained."""
    storage, resource = LocalModelStorage(tmp_path), Resource("sentence_intents")
    config = {**SentenceIntentClassifier.get_default_config(), "min_similarity": 0.3}
    trained = SentenceIntentClassifier.create(config, storage, resource, context("classifier"))
    return trained, lambda: SentenceIntentClassifier.load(
        config, storage, resource, context("classifier")
    )


def test_it_learns_saves_loads_and_rejects_the_far_away(
    tmp_path: Path, featurizer: SentenceEncoderFeaturizer
) -> None:
    trained, load = new_classifier(tmp_path)
    messages = [
        Message(data={TEXT: text, "intent": intent})
        for intent, texts in EXAMPLES.items()
        for text in texts
    ]
    featurizer.process_training_data(TrainingData(messages))
    trained.train(TrainingData(messages))
    loaded = load()

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


FAQ = {
    "faq/expiry": [
        "do gift cards expire",
        "when does my gift card run out",
        "is there an expiry date on the card",
        "how long is a gift card valid",
    ],
    "faq/cash_out": [
        "can i get cash for my gift card",
        "turn my gift card into money in my bank",
        "can the balance be paid out to me",
        "exchange a gift card for cash",
    ],
}
RESPONSES = {
    "utter_faq/expiry": [{"text": "Gift cards never expire."}],
    "utter_faq/cash_out": [{"text": "Gift cards cannot be exchanged for cash."}],
}


def faq_training_data() -> TrainingData:
    messages = [
        Message(data={TEXT: text, "intent": intent})
        for intent, texts in EXAMPLES.items()
        for text in texts
    ]
    messages += [
        Message(data={TEXT: text, "intent": "faq", INTENT_RESPONSE_KEY: key})
        for key, texts in FAQ.items()
        for text in texts
    ]
    return TrainingData(messages, responses=RESPONSES)


def test_faq_answers_are_selected_as_the_response_selector_would(
    tmp_path: Path, featurizer: SentenceEncoderFeaturizer
) -> None:
    trained, load = new_classifier(tmp_path)
    data = faq_training_data()
    featurizer.process_training_data(data)
    trained.train(data)
    loaded = load()

    for classifier in (trained, loaded):
        message = parse(featurizer, classifier, "will my gift card expire some day")
        intent = message.get("intent")
        assert intent["name"] == "faq"
        ranking = message.get("intent_ranking")
        # One entry per intent: the answers' confidences add up to the FAQ's.
        assert [r["name"] for r in ranking].count("faq") == 1
        assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-5)
        selected = message.get("response_selector")
        assert selected["all_retrieval_intents"] == ["faq"]
        answer = selected["faq"]["response"]
        assert answer["intent_response_key"] == "faq/expiry"
        assert answer["utter_action"] == "utter_faq/expiry"
        assert answer["responses"] == RESPONSES["utter_faq/expiry"]
        ranked = selected["faq"]["ranking"]
        assert [r["intent_response_key"] for r in ranked] == ["faq/expiry", "faq/cash_out"]
        assert sum(r["confidence"] for r in ranked) == pytest.approx(1.0, abs=1e-5)

        cash = parse(featurizer, classifier, "i would rather have cash than this card")
        assert cash.get("response_selector")["faq"]["response"]["intent_response_key"] == (
            "faq/cash_out"
        )


def test_character_n_grams_are_read_beside_the_sentence_vector(
    tmp_path: Path, featurizer: SentenceEncoderFeaturizer
) -> None:
    storage = LocalModelStorage(tmp_path)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    counts = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char_wb",
         "min_ngram": 2, "max_ngram": 4},
        storage, Resource("counts"), context("counts"),
    )  # fmt: skip
    data = faq_training_data()
    tokenizer.process_training_data(data)
    counts.train(data)
    counts.process_training_data(data)
    featurizer.process_training_data(data)

    def featurised(text: str) -> Message:
        message = Message(data={TEXT: text})
        tokenizer.process([message])
        counts.process([message])
        featurizer.process([message])
        return message

    rankings = {}
    for weight in (0.0, 1.0):
        resource = Resource(f"sentence_intents_{weight}")
        config = {**SentenceIntentClassifier.get_default_config(), "sparse_weight": weight}
        trained = SentenceIntentClassifier.create(config, storage, resource, context("c"))
        trained.train(data)
        loaded = SentenceIntentClassifier.load(config, storage, resource, context("c"))
        seen = []
        for classifier in (trained, loaded):
            message = featurised("how much is on this gift card")
            classifier.process([message])
            assert message.get("intent")["name"] == "check_balance"
            typo = featurised("redeem my gift crad plz")
            classifier.process([typo])
            seen.append(typo.get("intent_ranking"))
        assert seen[0] == seen[1]  # saved and loaded, the n-gram weights are the same
        rankings[weight] = seen[0]
    # The n-grams take part: the same message is scored differently with them.
    assert rankings[0.0][0]["confidence"] != pytest.approx(rankings[1.0][0]["confidence"])
