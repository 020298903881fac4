"""Loading a saved ``.keras`` model whose loss, metrics or layers came from lossearch."""

from __future__ import annotations

import os
import zipfile
from typing import Any

import keras

# Importing these registers lossearch's serializable classes with Keras (package "lossearch").
from lossearch import layers, losses, metrics  # noqa: F401
from lossearch._validation import shown


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
    path = os.fspath(filepath)
    if str(path).endswith(".keras") and os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(
            f"filepath: {shown(path)} is not a complete .keras file (a zip archive); was it cut "
            "short while it was written or copied?"
        )
    try:
        return keras.saving.load_model(
            filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    except RecursionError:  # a crafted config: Keras's JSON reader recurses
        raise ValueError(f"filepath: {shown(path)} holds a config nested too deeply.") from None
    except Exception as exc:
        first = _first_cause(exc)
        if isinstance(first, ValueError) and first is not exc:  # our own check, wrapped
            raise ValueError(f"filepath: {shown(path)}: {first}") from None
        raise


def _first_cause(exc: BaseException) -> BaseException:
    """Keras wraps a layer's refusal to load in a ``TypeError`` per nesting level; the
    innermost exception says what is wrong."""
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return exc
