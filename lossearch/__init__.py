"""lossearch: find the best loss function for a Keras classifier on imbalanced data.

:func:`optimize` searches loss families, their parameters and class weighting
against your model builder. :class:`LossConfig`
describes one loss, :func:`build_loss` / :func:`load_loss` rebuild it as a
Keras 3 loss, and :func:`callbacks_for` returns the callbacks it needs in ``fit``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from lossearch import _moved


def _command_line() -> bool:
    """The ``lossearch`` command: it loads Keras and TensorFlow (seconds to import) itself,
    for the commands that need them, so that help, ``--version``, ``spaces`` and argument
    errors answer at once."""
    return os.path.basename(sys.argv[0]) == "lossearch"


if not _command_line():
    from lossearch._startup import import_tensorflow_quietly

    import_tensorflow_quietly()  # before Keras imports it: without TensorFlow's start-up lines

    # Importing these registers lossearch's losses, layers and metrics with Keras, so that
    # `import lossearch` is enough before `keras.saving.load_model`.
    from lossearch import layers, losses, metrics, weights
    from lossearch.callbacks import DeferredReweighting, callbacks_for
    from lossearch.config import FORMAT, LossConfig, build_loss, load_loss
    from lossearch.losses import FAMILIES
    from lossearch.metrics import Objective
    from lossearch.resources import limit_threads
    from lossearch.saving import load_model
    from lossearch.search_space import SearchSpace, bundled_spaces
    from lossearch.weights import SCHEMES

# The search side (Optuna, MLflow, SQLAlchemy) loads on first use, so that rebuilding a saved
# loss needs Keras alone: in a serving image, or on a machine without the tracking stack.
_LAZY = {
    "optimize": "lossearch.api",
    "sync_mlflow": "lossearch.tracking.sync",
    "SearchResult": "lossearch.result",
    "open_storage": "lossearch.study.storages",
    "suggest_loss": "lossearch.integrations.optuna",
}
# Submodules for your own Optuna study or Keras Tuner tuner, loaded on first use (their home
# is lossearch.integrations; lossearch._moved keeps their old names importable).
_SUBMODULES = ("optuna", "keras_tuner")
_moved.install()

if TYPE_CHECKING:
    from lossearch.api import optimize
    from lossearch.integrations.optuna import suggest_loss
    from lossearch.result import SearchResult
    from lossearch.study.storages import open_storage
    from lossearch.tracking.sync import sync_mlflow


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"lossearch.integrations.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lossearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__version__ = "0.1.0"

__all__ = [
    "FAMILIES",
    "FORMAT",
    "SCHEMES",
    "DeferredReweighting",
    "LossConfig",
    "Objective",
    "SearchResult",
    "SearchSpace",
    "build_loss",
    "bundled_spaces",
    "callbacks_for",
    "layers",
    "limit_threads",
    "load_loss",
    "load_model",
    "losses",
    "metrics",
    "open_storage",
    "optimize",
    "suggest_loss",
    "sync_mlflow",
    "weights",
]
