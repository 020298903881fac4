"""Loading a saved ``.keras`` model whose loss, metrics or layers came from lossearch."""

from __future__ import annotations

import os
from typing import Any

import keras

# Importing these registers lossearch's serializable classes with Keras (package "lossearch").
from lossearch import layers, losses, metrics  # noqa: F401


def load_model(
    filepath: str | os.PathLike,
    *,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
) -> keras.Model:
    """``keras.saving.load_model`` with lossearch's losses, metrics and layers known.

    A model compiled with a lossearch loss (``result.trained_model``) or ending in its
    ``DecisionLayer`` (``result.model``) names those classes in its file; Keras can
    rebuild them only once they are registered, which importing lossearch does.

    Example:
        >>> model = lossearch.load_model("model.keras")  # doctest: +SKIP
        >>> labels = model.predict(x).argmax(-1)         # doctest: +SKIP
    """
    return keras.saving.load_model(
        filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )
