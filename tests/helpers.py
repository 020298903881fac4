"""Small real models and data for the tests."""

import keras
import numpy as np
from sklearn.datasets import load_digits


def task_of(family):
    from lossearch.losses import FAMILIES

    return "multiclass" if "multiclass" in FAMILIES[family].tasks else "multilabel"


def mlp(input_dim, outputs, activation=None, hidden=32):
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )


def long_tailed_digits(imbalance=20, seed=0):
    """scikit-learn's bundled digits with class sizes decaying geometrically."""
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        n = max(2, int(len(idx) * imbalance ** (-c / 9)))
        keep.extend(rng.choice(idx, n, replace=False))
    keep = rng.permutation(keep)
    return (x[keep] / 16.0).astype("float32"), y[keep]


def multilabel_from_digits(y):
    """Three labels per digit: is even, is > 6, is 0 (the last one rare)."""
    return np.stack([y % 2 == 0, y > 6, y == 0], axis=1).astype("float32")
