"""The trial runner trains the user's model exactly as ``model.fit`` would, only faster.

Its speed-ups (the optimizer built before the first trace, ``steps_per_epoch`` for
arrays) must not change a single number: a pick made by lossearch is the pick a
plain Keras loop would train to the same weights.
"""

import keras
import numpy as np
import pytest

from lossearch import LossConfig
from lossearch.data import prepare_data
from lossearch.metrics import Objective, resolve_minority_classes
from lossearch.models import ModelFacts, compile_with_loss
from lossearch.runner import TrialRunner
from tests.helpers import long_tailed_digits, mlp

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

X, Y = long_tailed_digits(imbalance=20)
X = X[:300].astype("float32")  # 300 samples: 8 batches of 32 a split, the last one partial
Y = Y[:300]
EPOCHS, BATCH, SEED = 3, 32, 7


def _runner() -> TrialRunner:
    facts = ModelFacts((None, 10), None)
    data = prepare_data((X, Y), output_shape=facts.output_shape, activation=None, seed=0)
    return TrialRunner(
        lambda: mlp(64, 10),
        data,
        Objective("balanced_accuracy"),
        minority_classes=resolve_minority_classes(
            None, data.class_names, data.class_counts, data.task
        ),
        facts=facts,
        epochs=EPOCHS,
        batch_size=BATCH,
    )


def _plain_fit(config: LossConfig, x, y) -> list[float]:
    """What a user's own loop gets: a fresh session, the seed, compile, fit."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = mlp(64, 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=config.build())
    history = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0)
    return history.history["loss"]


def test_a_trial_trains_to_the_same_losses_as_a_plain_fit():
    runner = _runner()
    split = runner.data.splits[0]
    assert len(split.y_train) % BATCH, "the test needs a partial last batch"
    config = LossConfig("focal", {"gamma": 2.0}, weights="inverse", **runner.config_facts())
    outcome = runner.run(config, seed=SEED)
    assert outcome.epochs_trained == EPOCHS
    expected = _plain_fit(config, split.x_train, split.y_train)
    np.testing.assert_allclose(outcome.history["loss"], expected, rtol=1e-6)


def test_the_optimizer_of_a_built_model_is_built_at_compile():
    model = mlp(64, 10)
    compile_with_loss(model, LossConfig("ce", class_counts=[5] * 10).build())
    assert model.optimizer.built
    # one slot variable per weight and moment, created before any trace
    assert len(model.optimizer.variables) > len(model.trainable_variables)


def test_a_model_built_on_first_call_still_trains():
    """No input shape: nothing to build the optimizer for until ``fit`` builds the model."""
    model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
    compile_with_loss(model, LossConfig("ce", class_counts=[5] * 10).build())
    assert not model.optimizer.built
    history = model.fit(X[:64], Y[:64], epochs=1, batch_size=BATCH, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and model.optimizer.built


@pytest.mark.parametrize("cv", [None, 3])
def test_the_refit_is_a_plain_fit_of_all_the_data_in_the_users_order(cv):
    """``result.model`` is the chosen loss trained by hand: the same data, order and seed,
    and the loss told the class counts of that data (a trial's are its training split's)."""
    from types import SimpleNamespace

    runner = _runner()
    runner.data = prepare_data((X, Y), output_shape=(None, 10), activation=None, cv=cv, seed=0)
    trial_config = LossConfig("ce", weights="inverse_sqrt", **runner.config_facts())
    refit = runner.refit(SimpleNamespace(hp_values={}, config=trial_config), SEED)
    counts = np.bincount(Y, minlength=10).tolist()
    assert list(trial_config.class_counts) != counts  # a split's counts, not the data's
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    by_hand = mlp(64, 10)
    config = LossConfig("ce", weights="inverse_sqrt", class_counts=counts)
    by_hand.compile(optimizer=keras.optimizers.Adam(1e-3), loss=config.build())
    by_hand.fit(X, Y, epochs=EPOCHS, batch_size=BATCH, verbose=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(refit(X[:50])),
        keras.ops.convert_to_numpy(by_hand(X[:50])),
        rtol=1e-5,
        atol=1e-6,
    )
