"""The loss search inside your own Optuna objective: lossearch's pieces, Optuna's loop.

Run: .venv/bin/python examples/optuna_own_objective.py   (about a minute on 2 cores)
Then: lossearch report --storage sqlite:///own_objective.db --study own-objective -o report.html
      optuna-dashboard sqlite:///own_objective.db
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The test suite runs each example on a small budget (LOSSEARCH_EXAMPLE_BUDGET=small).
SMALL = os.environ.get("LOSSEARCH_EXAMPLE_BUDGET") == "small"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import long_tailed_digits  # noqa: E402

x_all, y_all = long_tailed_digits(imbalance=10)  # digit 0: 178 samples ... digit 9: 18
x, xv, y, yv = train_test_split(x_all, y_all, test_size=0.25, stratify=y_all, random_state=0)
counts = np.bincount(y, minlength=10).tolist()
EPOCHS = 3 if SMALL else 20


def build(trial):
    units = trial.suggest_int("units", 16, 64, log=True)  # your own hyperparameters too
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(10)]
    )


def objective(trial):
    config = lossearch.suggest_loss(trial, space="long_tail", class_counts=counts)
    model = build(trial)
    model.compile("adam", loss=config.build(), metrics=[lossearch.metrics.BalancedAccuracy(10)])
    model.fit(
        x,
        y,
        validation_data=(xv, yv),
        epochs=EPOCHS,
        verbose=0,
        callbacks=lossearch.callbacks_for(config)
        + [lossearch.optuna.PruningCallback(trial, "val_balanced_accuracy")],
    )
    return model.evaluate(xv, yv, return_dict=True, verbose=0)["balanced_accuracy"]


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        storage="sqlite:///own_objective.db",
        study_name="own-objective",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    lossearch.optuna.enqueue_recipes(study, space="long_tail", class_counts=counts)
    study.optimize(
        objective,
        n_trials=7 if SMALL else 30,
        callbacks=[lossearch.optuna.MLflowCallback(experiment_name="examples")],
    )
    best = lossearch.optuna.best_config(study)
    best.to_json("best_loss.json")
    print("best:", best.describe(), f"balanced accuracy {study.best_value:.3f}")
