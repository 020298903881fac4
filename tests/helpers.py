"""Small real models and data for the tests."""

import keras
import numpy as np

from lossearch import datasets


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
    return datasets.long_tailed_digits(imbalance, seed)


def multilabel_from_digits(y):
    """Three labels per digit: is even, is > 6, is 0 (the last one rare)."""
    return np.stack([y % 2 == 0, y > 6, y == 0], axis=1).astype("float32")
