"""Intents from the sentence encoder's vector, and a rejection of what is far from every
gift-card example.

Measured on the held-out sets (docs/evaluation.md), a logistic regression on the sentence
encoder's vector reads gift-card requests better than DIET on count vectors did, and a
message whose nearest gift-card training example is still far away (cosine similarity below
``min_similarity``) is out of scope whatever the regression says: CLINC150's out-of-scope
queries are made of words our examples use ("balance", "card", "order", "account") in
sentences that mean something else, which is exactly what the encoder's distance sees.

DIET still extracts the entities that need judgement (person, amount); the FallbackClassifier
after this component turns a low-confidence or ambiguous answer into ``nlu_fallback``.
The model is stored as plain numpy arrays (no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

from bot.nlu.sentence_encoder import SentenceEncoderFeaturizer

OUT_OF_SCOPE = "out_of_scope"
FILE = "sentence_classifier.npz"


def sentence_vectors(messages: list[Message]) -> np.ndarray:
    """The dense sentence feature of each message's text (the sentence encoder's vector)."""
    rows = []
    for message in messages:
        _, sentence = message.get_dense_features(TEXT)
        if sentence is None:
            raise ValueError("no sentence vector: SentenceEncoderFeaturizer must come first")
        rows.append(sentence.features[0])
    return np.vstack(rows).astype(np.float32)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceIntentClassifier(IntentClassifier, GraphComponent):
    """Logistic regression on the sentence vector, with a nearest-example out-of-scope gate."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [SentenceEncoderFeaturizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # Inverse regularisation strength: the classes are few and the vectors normalised.
            "C": 100.0,
            "max_iter": 3000,
            # Below this cosine similarity to every in-scope training example: out of scope.
            "min_similarity": 0.35,
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._arrays = arrays or {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceIntentClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        vectors = sentence_vectors(examples)
        intents = np.array([m.get(INTENT) for m in examples])
        regression = LogisticRegression(
            C=self._config["C"],
            max_iter=self._config["max_iter"],
            class_weight="balanced",
            random_state=42,
        ).fit(vectors, intents)
        self._arrays = {
            "coef": regression.coef_.astype(np.float32),
            "intercept": regression.intercept_.astype(np.float32),
            "classes": regression.classes_.astype(str),
            "in_scope": vectors[intents != OUT_OF_SCOPE],
        }
        with self._storage.write_to(self._resource) as directory:
            np.savez(directory / FILE, **self._arrays)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceIntentClassifier:
        with (
            model_storage.read_from(resource) as directory,
            np.load(directory / FILE, allow_pickle=False) as stored,
        ):
            arrays = {name: stored[name] for name in stored.files}
        return cls(config, model_storage, resource, arrays)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Softmax over the classes, as LogisticRegression.predict_proba computes it."""
        scores = vectors @ self._arrays["coef"].T + self._arrays["intercept"]
        if scores.shape[1] == 1:  # two classes: sklearn keeps one column
            scores = np.hstack([-scores, scores]) / 2
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def process(self, messages: list[Message]) -> list[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text or not self._arrays:
            return messages
        vectors = sentence_vectors(with_text)
        probabilities = self.probabilities(vectors)
        nearest = (vectors @ self._arrays["in_scope"].T).max(axis=1)
        classes = [str(c) for c in self._arrays["classes"]]
        for message, row, similarity in zip(with_text, probabilities, nearest, strict=True):
            scored = sorted(zip(classes, row.tolist(), strict=True), key=lambda c: -c[1])
            if similarity < self._config["min_similarity"]:
                # Far from every gift-card example: a rule, so stated with full confidence.
                scored = [(OUT_OF_SCOPE, 1.0)] + [c for c in scored if c[0] != OUT_OF_SCOPE]
            ranking = [
                {"name": name, "confidence": confidence}
                for name, confidence in scored[: self._config["ranking_length"]]
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
