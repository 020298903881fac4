"""lossearch: find the best loss function for a Keras classifier on imbalanced data.

:func:`optimize` searches loss families, their parameters and class weighting
against your model builder. :class:`LossConfig`
describes one loss, :func:`build_loss` / :func:`load_loss` rebuild it as a
Keras 3 loss, and :func:`callbacks_for` returns the callbacks it needs in ``fit``.
"""

from lossearch import layers, losses, metrics, weights
from lossearch.api import optimize
from lossearch.callbacks import DeferredReweighting, callbacks_for
from lossearch.config import FORMAT, LossConfig, build_loss, load_loss
from lossearch.losses import FAMILIES
from lossearch.metrics import Objective
from lossearch.mlflow_sync import sync_mlflow
from lossearch.resources import limit_threads
from lossearch.result import SearchResult
from lossearch.search_space import SearchSpace, bundled_spaces
from lossearch.storages import open_storage
from lossearch.weights import SCHEMES

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
    "losses",
    "metrics",
    "open_storage",
    "optimize",
    "sync_mlflow",
    "weights",
]
