"""Loss families for imbalanced classification, as serializable Keras 3 losses.

``FAMILIES`` maps each family name (``"ce"``, ``"focal"``, ...) to its
``keras.losses.Loss`` class; :mod:`lossearch.losses.functional` holds the pure
functions behind them, and :mod:`lossearch.losses.families` what each family is
(tasks, parameters), which needs no Keras. The Keras parts load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lossearch.losses.families import SPECS, TASKS

if TYPE_CHECKING:
    from lossearch.losses import functional
    from lossearch.losses.losses import (
        FAMILIES,
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
    "SPECS",
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

# what needs Keras: loaded on first use
_KERAS_NAMES = frozenset(__all__) - {"SPECS", "TASKS", "functional"}


def __getattr__(name: str):
    if name == "functional":
        return importlib.import_module("lossearch.losses.functional")
    if name in _KERAS_NAMES:
        return getattr(importlib.import_module("lossearch.losses.losses"), name)
    raise AttributeError(f"module 'lossearch.losses' has no attribute {name!r}")
