"""Tune the model's learning rate and width together with the loss, through `hp`.

`hp` speaks Keras Tuner's vocabulary (Float, Int, Choice, Boolean) whichever
backend runs the search. Run: .venv/bin/python examples/tune_learning_rate.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The test suite runs each example on a small budget (LOSSEARCH_EXAMPLE_BUDGET=small):
# fewer and shorter trials, one hold-out split, the top trial without confirmation runs.
SMALL = os.environ.get("LOSSEARCH_EXAMPLE_BUDGET") == "small"
BUDGET = (
    {"n_trials": 3, "epochs": 2, "cv": None, "confirm_seeds": 0}
    if SMALL
    else {"n_trials": 12, "epochs": 8}
)

import keras  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import long_tailed_digits  # noqa: E402


def build_model(hp):
    units = hp.Int("units", 16, 64, step=16)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(10)]
    )
    # A compiled model keeps its optimizer and metrics; lossearch only replaces the loss.
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["accuracy"])
    return model


if __name__ == "__main__":
    x, y = long_tailed_digits(imbalance=20)
    result = lossearch.optimize(
        build_model,
        (x, y),
        space="quick",
        **BUDGET,
        seed=0,
        experiment_name="examples",
    )
    best = result.study.trials[result.best_trial_number]
    print(result.summary())
    print(f"learning rate {best.params['learning_rate']:.2e}, units {best.params['units']}")
