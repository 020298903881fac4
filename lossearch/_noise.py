"""What "clearly better" means, for every choice lossearch makes on validation data.

One rule, used by the selection of the config and by the tuning of its decision rule: a
challenger replaces the default only when its mean gain exceeds ``Z_CLEAR`` standard errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

Z_CLEAR = 1.64  # one-sided 95%: "clearly above noise"
BOOTSTRAP_ROUNDS = 200


def balanced_mean(values: np.ndarray, labels: np.ndarray) -> float:
    """The mean of each class's mean (classes with no sample left out)."""
    sums = np.bincount(labels, weights=values)
    counts = np.bincount(labels)
    present = counts > 0
    return float(np.mean(sums[present] / counts[present]))


def clearly_lower_balanced(challenger: np.ndarray, default: np.ndarray, labels: np.ndarray) -> bool:
    """Whether per-sample losses ``challenger`` are clearly below ``default``, class-balanced.

    The gain is the class-balanced mean of ``default - challenger``; its standard error
    comes from a paired bootstrap over samples (both sides resampled together). A class
    with one or two samples drops out of some resamples, so its noise is counted.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    diff = np.asarray(default, float) - np.asarray(challenger, float)
    gain = balanced_mean(diff, labels)
    if gain <= 0:
        return False
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(labels), (BOOTSTRAP_ROUNDS, len(labels)))
    return bool(gain > Z_CLEAR * float(np.std(_balanced_means(diff, labels, draws))))


def _balanced_means(values: np.ndarray, labels: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """:func:`balanced_mean` of each resample ``values[row]`` for ``row`` in ``draws``, in one
    pass (it runs after every epoch of every trial)."""
    n_classes = int(labels.max()) + 1
    # each (resample, class) pair its own bin
    bins = (labels[draws] + n_classes * np.arange(len(draws))[:, None]).ravel()
    size = len(draws) * n_classes
    sums = np.bincount(bins, weights=values[draws].ravel(), minlength=size).reshape(-1, n_classes)
    counts = np.bincount(bins, minlength=size).reshape(-1, n_classes)
    present = counts > 0
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=present)
    return means.sum(1) / present.sum(1)


def bootstrap_std(statistic: Callable[[np.ndarray], float], n: int, seed: int | None = 0) -> float:
    """The bootstrap standard deviation of ``statistic(indices)`` over resamples of ``n``
    samples; a resample it cannot score (a class left out: NaN or ``ValueError``) is
    skipped. NaN when fewer than two resamples scored."""
    rng = np.random.default_rng(seed)
    values = []
    with warnings.catch_warnings():  # a resample without positives: NaN AP, skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(BOOTSTRAP_ROUNDS):
            try:
                value = float(statistic(rng.integers(0, n, n)))
            except ValueError:
                continue
            if np.isfinite(value):
                values.append(value)
    return float(np.std(values)) if len(values) > 1 else float("nan")


def paired_std(
    score: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    ours: Sequence[np.ndarray],
    theirs: Sequence[np.ndarray],
    seed: int | None = 0,
) -> float:
    """The bootstrap standard deviation of a paired gain: the mean ``score(y_true, p)`` over
    the runs ``ours`` minus that over ``theirs``, both on the same resamples of the
    validation samples, so that what the sides share cancels. NaN when either side has no
    runs."""
    if not len(ours) or not len(theirs):
        return float("nan")

    def gain(idx: np.ndarray) -> float:
        mine = np.mean([score(y_true[idx], p[idx]) for p in ours])
        return float(mine - np.mean([score(y_true[idx], p[idx]) for p in theirs]))

    return bootstrap_std(gain, len(y_true), seed)
