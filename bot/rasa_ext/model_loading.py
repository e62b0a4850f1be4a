"""Rasa 3.6.21 loads a TensorFlow model (DIET, ResponseSelector, TED) by training it.

``RasaModel.load`` (rasa/utils/tensorflow/models.py, 3.6.21 line 408) creates the model's
variables by compiling it and running ``fit`` on one example, then overwrites them with
``load_weights``, then runs one prediction so that the prediction graph is traced. The ``fit``
traces the whole training graph, gradients and optimizer included, for every model: most of a
Rasa server's start (tens of seconds each, minutes on a busy machine), for variables that are
thrown away at once.

Here, when the model is loaded to serve (not to be fine-tuned), the weights are read first and
the one prediction Rasa runs anyway creates the variables: TensorFlow restores each variable of
an object-based checkpoint as it is created (deferred restoration), so the model ends up with
the same weights and predicts the same, without ever tracing training. Variables that only
training uses (the optimizer's) are never created and stay unread in the checkpoint.
Fine-tuning (``rasa train --finetune``) and a load without a prediction example keep Rasa's
own path. Tested in tests/rasa_ext/test_model_loading.py (same predictions as Rasa's load).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

ORIGINAL_LOAD = RasaModel.load.__func__
_installed = False


def _load(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: RasaModelData,
    predict_data_example: RasaModelData | None = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    if finetune_mode or predict_data_example is None:
        return ORIGINAL_LOAD(
            cls,
            model_file_name,
            model_data_example,
            predict_data_example,
            finetune_mode,
            *args,
            **kwargs,
        )
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
        run_eagerly=config.get(RUN_EAGERLY),
    )
    restored = model.load_weights(model_file_name)
    model.run_inference(predict_data_example)
    restored.assert_existing_objects_matched()
    restored.expect_partial()  # the optimizer's slots: training only
    return model


def install() -> None:
    """Replace ``RasaModel.load`` (idempotent)."""
    global _installed
    if not _installed:
        RasaModel.load = classmethod(_load)
        _installed = True
