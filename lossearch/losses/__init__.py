"""Loss families for imbalanced classification, as serializable Keras 3 losses.

``FAMILIES`` maps each family name (``"ce"``, ``"focal"``, ...) to its
``keras.losses.Loss`` class; :mod:`lossearch.losses.functional` holds the pure
functions behind them.
"""

from lossearch.losses import functional
from lossearch.losses.losses import (
    FAMILIES,
    TASKS,
    AsymmetricLoss,
    CrossEntropy,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    LossearchLoss,
    NCERCELoss,
    Poly1Loss,
    PosWeightedBCE,
    VSLoss,
)

__all__ = [
    "FAMILIES",
    "TASKS",
    "AsymmetricLoss",
    "CrossEntropy",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LossearchLoss",
    "NCERCELoss",
    "Poly1Loss",
    "PosWeightedBCE",
    "VSLoss",
    "functional",
]
