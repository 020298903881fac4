"""Twenty epochs of a small MLP on long-tailed digits with every family."""

import keras
import numpy as np
import pytest

from lossearch import FAMILIES, LossConfig, callbacks_for
from tests.helpers import long_tailed_digits, mlp, multilabel_from_digits

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

X, Y = long_tailed_digits(imbalance=20)
COUNTS = np.bincount(Y, minlength=10).tolist()


def _setup(family):
    if "multiclass" in FAMILIES[family].tasks:
        config = LossConfig(
            family, weights="effective_number", class_counts=COUNTS, task="multiclass"
        )
        return config, Y, 10
    y = multilabel_from_digits(Y)
    config = LossConfig(
        family, weights="inverse", class_counts=y.sum(0).astype(int).tolist(), task="multilabel"
    )
    return config, y, 3


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_twenty_epochs_train_without_nan_and_the_loss_decreases(family):
    config, y, outputs = _setup(family)
    model = mlp(64, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=config.build())
    history = model.fit(
        X,
        y,
        epochs=20,
        batch_size=64,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks_for(config)],
    )
    losses = history.history["loss"]
    assert len(losses) == 20 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.slow
def test_ldam_drw_with_cosine_head_trains():
    from lossearch.layers import CosineDense

    config = LossConfig(
        "ldam", {"scale": 30.0}, weights="inverse", drw_start=0.5, class_counts=COUNTS
    )
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), CosineDense(10)]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=config.build())
    history = model.fit(X, Y, epochs=20, batch_size=64, verbose=0, callbacks=callbacks_for(config))
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][9] < history.history["loss"][0]
