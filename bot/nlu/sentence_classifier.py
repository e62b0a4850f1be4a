"""Intents and FAQ answers from the sentence encoder's vector and character n-grams, and a
rejection of what is far from every gift-card example.

Measured on the held-out sets (docs/evaluation.md), a logistic regression on the sentence
encoder's vector reads gift-card requests better than DIET on count vectors did, and a
message whose nearest gift-card training example is still far away (cosine similarity below
``min_similarity``) is out of scope whatever the regression says: CLINC150's out-of-scope
queries are made of words our examples use ("balance", "card", "order", "account") in
sentences that mean something else, which is exactly what the encoder's distance sees.

Beside the encoder's vector the regression reads the message's sparse sentence features (the
pipeline's character n-gram counts, L2-normalised and weighted by ``sparse_weight``): they
carry typos ("wher is the serail number") and card formats that the encoder's WordPiece
vocabulary breaks into noise.

The regression learns the FAQ's answers as classes of their own (``faq/expiry``), so it also
does the ResponseSelector's job: the message's intent is ``faq`` with the summed confidence
of its answers, and the ``response_selector`` output names the best answer, as Rasa's
ResponseSelector would (ActionRetrieveResponse and the fallback's buttons read it). That
keeps a second neural network out of training and parsing, and answers the FAQ better
(docs/evaluation.md).

The FallbackClassifier after this component turns a low-confidence or ambiguous answer into
``nlu_fallback``. The model is stored as plain numpy arrays and JSON (no pickle).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

from bot.nlu.sentence_encoder import SentenceEncoderFeaturizer

OUT_OF_SCOPE = "out_of_scope"
FILE = "sentence_classifier.npz"
SEPARATOR = "/"  # a retrieval intent's answer: "faq/expiry"


def sentence_vectors(messages: list[Message]) -> np.ndarray:
    """The dense sentence feature of each message's text (the sentence encoder's vector)."""
    rows = []
    for message in messages:
        _, sentence = message.get_dense_features(TEXT)
        if sentence is None:
            raise ValueError("no sentence vector: SentenceEncoderFeaturizer must come first")
        rows.append(sentence.features[0])
    return np.vstack(rows).astype(np.float32)


def sparse_vectors(messages: list[Message], width: int) -> scipy.sparse.csr_matrix:
    """The sparse sentence features of each message's text, each row of unit length.

    ``width`` is the number of columns the model was trained with (0: none are used). Built
    row by row from the features' arrays: scipy's generic stacking and scaling cost more than
    the whole regression on a single message.
    """
    data: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    pointers = [0]
    for message in messages if width else []:
        _, sentence = message.get_sparse_features(TEXT)
        if sentence is not None:
            row = sentence.features.tocsr()
            if row.shape[1] != width:
                raise ValueError(f"{row.shape[1]} sparse features, the model has {width}")
            row.sum_duplicates()
            values = row.data.astype(np.float32)
            norm = float(np.sqrt(values @ values))
            data.append(values / norm if norm else values)
            columns.append(row.indices)
        pointers.append(pointers[-1] + (len(columns[-1]) if sentence is not None else 0))
    if not width:
        return scipy.sparse.csr_matrix((len(messages), 0), dtype=np.float32)
    return scipy.sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, dtype=np.float32),
            np.concatenate(columns) if columns else np.zeros(0, dtype=np.int32),
            np.array(pointers),
        ),
        shape=(len(messages), width),
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceIntentClassifier(IntentClassifier, GraphComponent):
    """Logistic regression on the sentence vector and n-grams, with an out-of-scope gate."""

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
            # Weight of the (unit-length) sparse sentence features beside the (unit-length)
            # sentence vector; 0 reads the sentence vector alone.
            "sparse_weight": 0.0,
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
        self._prepare()
        self._responses: dict[str, Any] = (
            json.loads(str(self._arrays["responses"])) if "responses" in self._arrays else {}
        )

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
        width = 0
        if self._config["sparse_weight"] > 0:
            _, first = examples[0].get_sparse_features(TEXT)
            width = first.features.shape[1] if first is not None else 0
        dense = sentence_vectors(examples)
        sparse = sparse_vectors(examples, width) * self._config["sparse_weight"]
        features = scipy.sparse.hstack([scipy.sparse.csr_matrix(dense), sparse]).tocsr()
        # Full intents: an FAQ example is learnt as its answer ("faq/expiry").
        labels = np.array([m.get_full_intent() for m in examples])
        regression = LogisticRegression(
            C=self._config["C"],
            max_iter=self._config["max_iter"],
            class_weight="balanced",
            random_state=42,
        ).fit(features, labels)
        retrieval = sorted({str(label) for label in labels if SEPARATOR in label})
        responses = {
            key: value
            for key, value in training_data.responses.items()
            if key.removeprefix("utter_") in retrieval
        }
        self._responses = responses
        self._arrays = {
            "coef": regression.coef_.astype(np.float32),
            "intercept": regression.intercept_.astype(np.float32),
            "classes": regression.classes_.astype(str),
            "in_scope": dense[np.array([m.get(INTENT) != OUT_OF_SCOPE for m in examples])],
            "sparse_width": np.array(width),
            "responses": np.array(json.dumps(responses)),
        }
        self._prepare()
        with self._storage.write_to(self._resource) as directory:
            np.savez(directory / FILE, **self._arrays)
        return self._resource

    def _prepare(self) -> None:
        """What parsing needs, ready to use: class names, and the weights of the sentence
        vector and of the sparse features as contiguous (features x classes) matrices."""
        self._classes = [str(c) for c in self._arrays.get("classes", [])]
        coef = self._arrays.get("coef", np.zeros((0, 0), dtype=np.float32))
        width = int(self._arrays.get("sparse_width", 0))
        split = coef.shape[1] - width
        self._coef = (
            np.ascontiguousarray(coef[:, :split].T),
            np.ascontiguousarray(coef[:, split:].T),
        )

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

    def probabilities(self, dense: np.ndarray, sparse: scipy.sparse.csr_matrix) -> np.ndarray:
        """Softmax over the classes, as LogisticRegression.predict_proba computes it."""
        dense_coef, sparse_coef = self._coef
        scores = dense @ dense_coef + self._arrays["intercept"]
        if sparse.shape[1]:
            scores += self._config["sparse_weight"] * np.asarray(sparse @ sparse_coef)
        if scores.shape[1] == 1:  # two classes: sklearn keeps one column
            scores = np.hstack([-scores, scores]) / 2
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def process(self, messages: list[Message]) -> list[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text or not self._arrays:
            return messages
        dense = sentence_vectors(with_text)
        sparse = sparse_vectors(with_text, int(self._arrays.get("sparse_width", 0)))
        probabilities = self.probabilities(dense, sparse)
        nearest = (dense @ self._arrays["in_scope"].T).max(axis=1)
        classes = self._classes
        for message, row, similarity in zip(with_text, probabilities, nearest, strict=True):
            intents: dict[str, float] = defaultdict(float)
            answers: dict[str, list[tuple[str, float]]] = defaultdict(list)
            for name, confidence in zip(classes, row.tolist(), strict=True):
                intent = name.split(SEPARATOR)[0]
                intents[intent] += confidence
                if SEPARATOR in name:
                    answers[intent].append((name, confidence))
            scored = sorted(intents.items(), key=lambda c: -c[1])
            if similarity < self._config["min_similarity"]:
                # Far from every gift-card example: a rule, so stated with full confidence.
                scored = [(OUT_OF_SCOPE, 1.0)] + [c for c in scored if c[0] != OUT_OF_SCOPE]
            ranking = [
                {"name": name, "confidence": confidence}
                for name, confidence in scored[: self._config["ranking_length"]]
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            if answers:
                self._select_response(message, answers)
        return messages

    def _select_response(
        self, message: Message, answers: dict[str, list[tuple[str, float]]]
    ) -> None:
        """The ``response_selector`` output of Rasa's ResponseSelector, for each retrieval
        intent: its best answer, with confidences relative to that intent's answers."""
        selected: dict[str, Any] = {RESPONSE_SELECTOR_RETRIEVAL_INTENTS: sorted(answers)}
        for intent, candidates in answers.items():
            total = sum(c for _, c in candidates) or 1.0
            ranked = sorted(((k, c / total) for k, c in candidates), key=lambda c: -c[1])
            best, confidence = ranked[0]
            utter = f"utter_{best}"
            selected[intent] = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {
                    RESPONSE_SELECTOR_RESPONSES_KEY: self._responses.get(utter, [{TEXT: best}]),
                    "confidence": confidence,
                    INTENT_RESPONSE_KEY: best,
                    RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter,
                },
                RESPONSE_SELECTOR_RANKING_KEY: [
                    {"confidence": c, INTENT_RESPONSE_KEY: k}
                    for k, c in ranked[: self._config["ranking_length"]]
                ],
            }
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selected, add_to_output=True)
