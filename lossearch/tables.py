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


def refuse_other_files(spec: str) -> None:
    """``--data`` that is neither a data file nor ``MODULE:NAME``: a folder, a file of
    another kind, or a name with no ``:`` that is no file. Said before anything else is
    blamed (``--target``, an import)."""
    path = Path(spec)
    kinds = ", ".join(FORMATS)
    if path.is_dir():
        raise ValueError(f"--data: {shown(spec)} is a folder; name a data file ({kinds}) in it.")
    if path.is_file():
        raise ValueError(
            f"--data: {shown(spec)} is not a {kinds} file; save it as one of these, or name "
            "Python data as MODULE:NAME."
        )
    if ":" not in spec:
        raise ValueError(
            f"--data: no such file {shown(spec)}; expected a data file ({kinds}) or MODULE:NAME."
        )


def read_data_file(path: str | os.PathLike, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a CSV or Parquet file (``target`` names the label column; every
    other column is a feature and must be numeric) or an ``.npz`` file (arrays ``x`` and
    ``y``, or ``target`` as the label array's name). Labels may be text.

    Raises:
        ValueError: naming ``--data`` or ``--target`` and what was expected.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--data: {shown(str(path))} is a folder; name a data file in it.")
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
            f"{shown(list(table.columns))}{_separator_hint(table.columns)}."
        )
    if len(table) == 0:
        raise ValueError(f"--data: {path.name} has a header but no rows.")
    labels = _labels(table[target], target, path.name)
    features = table.drop(columns=[target])
    text = [c for c in features.columns if not is_numeric_dtype(features[c].dtype)]
    if text:
        raise ValueError(
            f"--data: feature column(s) {shown(text)} of {path.name} are not numeric; encode "
            "them (one-hot, say) or drop them first."
        )
    if features.shape[1] == 0:
        raise ValueError(f"--data: {path.name} has no feature column beside {shown(target)}.")
    return features.to_numpy(dtype="float32"), labels.to_numpy()


def _labels(labels, target: str, name: str):
    """The label column, refused where a row has none or where it holds measurements
    (non-integer numbers) rather than classes."""
    missing = np.flatnonzero(labels.isna().to_numpy())
    if missing.size:
        raise ValueError(
            f"--target: {missing.size} row(s) of {name} have no {shown(target)} label: "
            f"data row(s) {_rows(missing)} (the first data row is 1). Label them, or drop "
            "them first."
        )
    if labels.dtype.kind == "f":
        fractional = np.flatnonzero(np.mod(labels.to_numpy(), 1) != 0)
        if fractional.size:
            raise ValueError(
                f"--target: {shown(target)} of {name} holds numbers with a fraction (data "
                f"row(s) {_rows(fractional)}: {float(labels.iloc[fractional[0]]):g}, ...); "
                "lossearch trains classifiers, so the target must name classes (integers or "
                "text), not a measured quantity."
            )
    return labels


def _separator_hint(columns) -> str:
    if len(columns) == 1 and any(sep in str(columns[0]) for sep in ";\t|"):
        return " (one column: the file looks separated by another character than a comma)"
    return ""


def _duplicate_header(path: Path) -> list[str]:
    """The CSV header's repeated names (pandas would rename them 'a.1', 'a.2' silently)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    return sorted({name for name in header if header.count(name) > 1})


def _rows(indices: np.ndarray, limit: int = 5) -> str:
    """Data rows counted from 1 (the header not counted), the first ``limit`` of them."""
    shown_rows = ", ".join(str(i + 1) for i in indices[:limit])
    return shown_rows + (f" and {indices.size - limit} more" if indices.size > limit else "")


def is_numeric_dtype(dtype) -> bool:
    """Numbers (and booleans), whatever the dtype's kind: NumPy's, or pandas' own (a string
    column is ``StringDtype``, which NumPy cannot interpret)."""
    from pandas.api.types import is_numeric_dtype as numeric

    return numeric(dtype)


def _table(path: Path):
    import pandas as pd

    if path.stat().st_size == 0:
        raise ValueError(f"--data: {path.name} is empty.")
    if path.suffix.lower() == ".csv":
        repeated = _duplicate_header(path)
        if repeated:
            raise ValueError(
                f"--data: {path.name} names column(s) {shown(repeated)} more than once; give "
                "each column its own name."
            )
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:  # blank lines only
            raise ValueError(f"--data: {path.name} holds no table.") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ValueError(f"--data: {path.name} is not a readable CSV ({first}).") from None
    try:
        return pd.read_parquet(path)
    except ImportError:
        raise ValueError(
            "--data: reading Parquet needs pyarrow (pip install pyarrow), or save the table as CSV."
        ) from None
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError: a damaged or other file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--data: {path.name} is not a readable Parquet file ({first}).") from None


def _npz(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:  # not a zip, damaged, or an .npy renamed
        raise ValueError(
            f"--data: {path.name} is not a readable .npz file ({type(exc).__name__}: {exc})."
        ) from None
    if not hasattr(arrays, "files"):  # a plain .npy array under an .npz name
        raise ValueError(f"--data: {path.name} holds one array, not the arrays 'x' and 'y'.")
    with arrays:
        names = list(arrays.files)
        label = target or "y"
        feature = "x" if "x" in names else "X"
        if label not in names or feature not in names:
            raise ValueError(
                f"--data: {path.name} holds arrays {shown(names)}; expected 'x' and 'y' (or "
                "--target naming the label array)."
            )
        return arrays[feature], arrays[label]
