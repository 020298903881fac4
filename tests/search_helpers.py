"""Tiny models and data for end-to-end searches."""

import keras
import mlflow
import numpy as np

from lossearch.datasets import fraud_like, long_tailed_digits, multilabel_digits

# cv=None: one hold-out split (cv="auto", the default, would score the tiny tails out-of-fold
# at three times the cost; test_optimize covers it)
# confirm_seeds=1: one confirmation run a candidate shows the confirmation at half the default's
# trainings; the tests of the rule itself pass their own.
FAST = {
    "epochs": 3,
    "batch_size": 64,
    "show_progress": False,
    "seed": 0,
    "cv": None,
    "confirm_seeds": 1,
}


# The recipes of the quick space, in the order they run first (multiclass, a class-averaged
# objective): the incumbent, the CE baseline, then the space's order.
QUICK_RECIPES = [
    "logit_adjusted",
    "ce_baseline",
    "inverse_weighted_ce",
    "effective_number_ce",
    "focal",
    "ldam_drw",
]


def tiny_search(mlflow_uri, experiment, *, build_model=None, data, **overrides):
    """A real, tiny search: the quick space, :data:`FAST` settings, this test's experiment;
    ``build_model`` defaults to a small MLP for 64 features and 10 classes."""
    import lossearch

    build_model = build_model or dense_model(64, 10)
    kwargs = {"space": "quick", **FAST, **overrides}
    return lossearch.optimize(
        build_model, data, tracking_uri=mlflow_uri, experiment_name=experiment, **kwargs
    )


def digits(imbalance=10):
    return long_tailed_digits(imbalance=imbalance)


def small_fraud():
    return fraud_like(n_samples=1500, positive_rate=0.05)


def ml_digits():
    return multilabel_digits()


def dense_model(inputs, outputs, activation=None, hidden=16):
    def build_model():
        return keras.Sequential(
            [
                keras.Input((inputs,)),
                keras.layers.Dense(hidden, activation="relu"),
                keras.layers.Dense(outputs, activation=activation),
            ]
        )

    return build_model


def runs_of(tracking_uri, experiment):
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def onehot(y, classes):
    return np.eye(classes, dtype="float32")[y]
