"""Binary, fraud-like: 1% positives, scored on the PR-AUC of the rare class.

Run: .venv/bin/python examples/binary_fraud.py
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
from lossearch.datasets import fraud_like  # noqa: E402


def build_model():
    # A sigmoid output: lossearch sees probabilities and sets from_logits=False.
    return keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


if __name__ == "__main__":
    x, y = fraud_like(n_samples=4000, positive_rate=0.01)
    result = lossearch.optimize(
        build_model,
        (x, y),
        space="binary",
        objective="pr_auc",
        **BUDGET,
        batch_size=128,
        class_names=["legit", "fraud"],
        seed=0,
        experiment_name="examples",
    )
    print(result.summary())
    print("fraud recall with the chosen loss:", result.best_metrics["per_class"]["fraud"]["recall"])
