"""Quickstart: find a loss for a long-tailed version of scikit-learn's digits.

Run: .venv/bin/python examples/quickstart.py   (about a minute on 2 cores)
Then: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The test suite runs each example on a small budget (LOSSEARCH_EXAMPLE_BUDGET=small):
# fewer and shorter trials, one hold-out split, the top trial without confirmation runs.
SMALL = os.environ.get("LOSSEARCH_EXAMPLE_BUDGET") == "small"
BUDGET = (
    {"n_trials": 3, "epochs": 2, "cv": None, "confirm_seeds": 0}
    if SMALL
    else {"n_trials": 12, "epochs": 10}
)

import keras  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import long_tailed_digits  # noqa: E402


def build_model():
    # Plain logits out: lossearch detects that and builds every loss with from_logits=True.
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )


if __name__ == "__main__":
    x, y = long_tailed_digits(imbalance=20)  # digit 0: 178 samples ... digit 9: 9
    result = lossearch.optimize(
        build_model,
        (x, y),
        space="quick",
        **BUDGET,
        seed=0,
        experiment_name="examples",
    )
    print(result.summary())
    result.best_config.to_json("best_loss.json")
    print("wrote best_loss.json:", result.best_config.describe())
