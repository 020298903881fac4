"""The refit model as an MLflow model on the search's parent run.

``mlflow.keras.log_model`` (through ``Tracker.log_model``) writes the
``.keras`` file (its last layer applies the tuned decision rule; its compile config holds
the chosen loss), a signature and an input example taken from the validation data, and
the loss config again as readable metadata. Loading it back (``mlflow.keras.load_model``
or ``mlflow.pyfunc.load_model``) needs ``import lossearch`` first: Keras rebuilds only the
custom classes that are registered, and it imports no module but its own to find them.
"""

from __future__ import annotations

from contextlib import contextmanager
from importlib import metadata
from typing import Any

import keras
import mlflow
import numpy as np

from lossearch.config import LossConfig
from lossearch.tracking.runs import Tracker

MODEL_NAME = "model"  # the model's name on the parent run: runs:/<parent>/model
EXAMPLE_ROWS = 5


def input_example(features: Any, rows: int = EXAMPLE_ROWS) -> Any:
    """The first ``rows`` samples of ``features`` as numpy (a dict for named inputs), or
    ``None`` when their layout has no MLflow schema (a list of several inputs)."""
    if hasattr(features, "take") and hasattr(features, "element_spec"):  # tf.data
        element = next(iter(features.take(1)))
        batch = element[0] if isinstance(element, tuple) else element
        return input_example(keras.tree.map_structure(keras.ops.convert_to_numpy, batch), rows)
    if isinstance(features, dict):
        return {name: np.asarray(value)[:rows] for name, value in features.items()}
    if isinstance(features, list | tuple):
        return None
    return np.asarray(features)[:rows]


def requirements() -> list[str]:
    """What the model needs to load: lossearch, Keras and the backend it was trained on.

    Given explicitly: MLflow would otherwise load the model in a subprocess to infer them.
    """
    packages = ["lossearch", "keras", keras.backend.backend()]  # the backend's package name
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:  # e.g. lossearch run from a source tree
            pins.append(package)
    return pins


@contextmanager
def _quiet_predict():
    was_on = keras.utils.is_interactive_logging_enabled()
    keras.utils.disable_interactive_logging()
    try:
        yield
    finally:
        if was_on:
            keras.utils.enable_interactive_logging()


def log_keras_model(
    tracker: Tracker,
    model: keras.Model,
    features: Any,
    config: LossConfig,
    registered_model_name: str | None = None,
) -> str | None:
    """Log ``model`` on the parent run; its ``models:/`` URI, or ``None`` when MLflow
    refused it (a warning says why; the search's results are kept either way)."""
    if tracker.offline or tracker.parent_id is None:
        return None
    example = input_example(features)
    signature = None
    if example is not None:
        signature = mlflow.models.infer_signature(example, model.predict(example, verbose=0))
    with _quiet_predict():  # MLflow predicts on the example to check it: no progress bar
        return tracker.log_model(
            model=model,
            name=MODEL_NAME,
            signature=signature,
            input_example=example,
            pip_requirements=requirements(),
            metadata={"lossearch.loss": config.to_dict()},  # its decision rule included
            registered_model_name=registered_model_name,
        )
