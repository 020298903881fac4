"""What "clearly better" means, for every choice lossearch makes on validation data.

One rule, used by the selection of the config and by the tuning of its decision rule: a
challenger replaces the default only when its mean gain exceeds ``Z_CLEAR`` standard errors.
"""

from __future__ import annotations

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
    resampled = [balanced_mean(diff[idx], labels[idx]) for idx in draws]
    return bool(gain > Z_CLEAR * float(np.std(resampled)))
