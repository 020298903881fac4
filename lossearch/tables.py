"""Data as users keep it, for the command line: a CSV or Parquet table with a target column,
or an ``.npz`` file of arrays ``x`` and ``y``.

Example:
    >>> x, y = read_data_file("transactions.csv", target="label")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lossearch._validation import shown

FORMATS = (".csv", ".parquet", ".npz")


def is_data_file(spec: str) -> bool:
    """Whether ``--data`` names a data file (by its extension) rather than ``MODULE:NAME``."""
    return Path(spec).suffix.lower() in FORMATS


def read_data_file(path: str | os.PathLike, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a CSV or Parquet file (``target`` names the label column; every
    other column is a feature and must be numeric) or an ``.npz`` file (arrays ``x`` and
    ``y``, or ``target`` as the label array's name). Labels may be text.

    Raises:
        ValueError: naming ``--data`` or ``--target`` and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--data: no such file {shown(str(path))}.")
    if path.suffix.lower() == ".npz":
        return _npz(path, target)
    if target is None:
        raise ValueError(f"--target: name the label column of {path.name}.")
    table = _table(path)
    if target not in table.columns:
        raise ValueError(
            f"--target: no column {shown(target)} in {path.name}; its columns: "
            f"{shown(list(table.columns))}."
        )
    features = table.drop(columns=[target])
    text = [c for c in features.columns if not np.issubdtype(features[c].dtype, np.number)]
    if text:
        raise ValueError(
            f"--data: feature column(s) {shown(text)} of {path.name} are not numeric; encode "
            "them (one-hot, say) or drop them first."
        )
    if features.shape[1] == 0:
        raise ValueError(f"--data: {path.name} has no feature column beside {shown(target)}.")
    return features.to_numpy(dtype="float32"), table[target].to_numpy()


def _table(path: Path):
    import pandas as pd

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise ValueError(
            "--data: reading Parquet needs pyarrow (pip install pyarrow), or save the table as CSV."
        ) from None


def _npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as arrays:
        names = list(arrays.files)
        label = target or "y"
        feature = "x" if "x" in names else "X"
        if label not in names or feature not in names:
            raise ValueError(
                f"--data: {path.name} holds arrays {shown(names)}; expected 'x' and 'y' (or "
                "--target naming the label array)."
            )
        return arrays[feature], arrays[label]
