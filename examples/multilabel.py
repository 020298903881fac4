"""Multi-label: three labels per image, one of them rare (is it a zero?).

Run: .venv/bin/python examples/multilabel.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The test suite runs each example on a small budget (LOSSEARCH_EXAMPLE_BUDGET=small):
# fewer and shorter trials, one hold-out split, the top trial without confirmation runs.
SMALL = os.environ.get("LOSSEARCH_EXAMPLE_BUDGET") == "small"
BUDGET = (
    {"n_trials": 3, "epochs": 2, "cv": None, "confirm_seeds": 0}
    if SMALL
    else {"n_trials": 10, "epochs": 8}
)

import keras  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import multilabel_digits  # noqa: E402


def build_model():
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)]
    )


if __name__ == "__main__":
    x, labels = multilabel_digits(imbalance=10)  # multi-hot: [even, above six, zero]
    result = lossearch.optimize(
        build_model,
        (x, labels),
        space="multilabel",
        **BUDGET,
        seed=0,
        class_names=["even", "above_six", "zero"],
        experiment_name="examples",
    )
    print(result.summary())
