"""Small imbalanced datasets built from scikit-learn's bundled data (no downloads)."""

from __future__ import annotations

import numpy as np

from lossearch._validation import Interval, check


def long_tailed_digits(imbalance: float = 20.0, seed: int = 0, test_size: float = 0.0):
    """scikit-learn's digits with class sizes decaying geometrically.

    Class ``c`` keeps ``n_c * imbalance ** (-c / 9)`` of its samples, so digit 0
    keeps all (~178) and digit 9 keeps ``1 / imbalance`` of them (at least 2).
    With ``test_size`` a *balanced* test set is held out first (the usual
    long-tail protocol), and ``((x, y), (x_test, y_test))`` is returned.

    Example:
        >>> x, y = long_tailed_digits(imbalance=20)
        >>> np.bincount(y)[[0, 9]].tolist()
        [178, 9]
    """
    from sklearn.datasets import load_digits

    check("imbalance", imbalance, [Interval(float, 1, None)])
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    rng = np.random.default_rng(seed)
    test_idx = []
    if test_size:
        per_class = int(min(np.bincount(y)) * test_size)
        for c in range(10):
            test_idx.extend(rng.choice(np.flatnonzero(y == c), per_class, replace=False))
    pool = np.setdiff1d(np.arange(len(y)), test_idx)
    keep = []
    for c in range(10):
        idx = pool[y[pool] == c]
        n = max(2, int(round(len(idx) * imbalance ** (-c / 9))))
        keep.extend(rng.choice(idx, min(n, len(idx)), replace=False))
    keep = rng.permutation(keep)
    if not test_size:
        return x[keep], y[keep]
    test_idx = rng.permutation(test_idx)
    return (x[keep], y[keep]), (x[test_idx], y[test_idx])


def fraud_like(n_samples: int = 4000, positive_rate: float = 0.01, seed: int = 0):
    """A binary set with rare positives, from ``make_classification``."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n_samples,
        n_features=20,
        n_informative=6,
        n_redundant=4,
        weights=[1 - positive_rate],
        flip_y=0.0,
        class_sep=1.0,
        random_state=seed,
    )
    return x.astype("float32"), y.astype("int64")


def multilabel_digits(imbalance: float = 10.0, seed: int = 0):
    """Digits with three labels each: is even, is above 6, is zero (the rare one)."""
    x, y = long_tailed_digits(imbalance, seed)
    labels = np.stack([y % 2 == 0, y > 6, y == 0], axis=1).astype("float32")
    return x, labels
