"""lossearch: find the best loss function for a Keras classifier on imbalanced data.

The loss family and its parameters are hyperparameters: :class:`LossConfig`
describes one loss, :func:`build_loss` / :func:`load_loss` rebuild it as a
Keras 3 loss, and :func:`callbacks_for` returns the callbacks it needs in ``fit``.
"""

from lossearch import layers, losses, weights
from lossearch.callbacks import DeferredReweighting, callbacks_for
from lossearch.config import FORMAT, LossConfig, build_loss, load_loss
from lossearch.losses import FAMILIES
from lossearch.weights import SCHEMES

__version__ = "0.1.0"

__all__ = [
    "FAMILIES",
    "FORMAT",
    "SCHEMES",
    "DeferredReweighting",
    "LossConfig",
    "build_loss",
    "callbacks_for",
    "layers",
    "load_loss",
    "losses",
    "weights",
]
