"""One process of a distributed Keras Tuner search with LossHyperModel (run by the tests).

Usage: python tests/kt_distributed.py ROLE PORT DIRECTORY   (ROLE: chief, tuner0, tuner1, ...)
"""

import json
import os
import sys

role, port, directory = sys.argv[1:4]
os.environ.update(
    KERASTUNER_TUNER_ID=role,
    KERASTUNER_ORACLE_IP="127.0.0.1",
    KERASTUNER_ORACLE_PORT=port,
    TF_CPP_MIN_LOG_LEVEL="3",
)

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402

from lossearch.datasets import long_tailed_digits  # noqa: E402
from lossearch.integrations.keras_tuner import LossHyperModel, best_config  # noqa: E402

MAX_TRIALS = 6


def build_model(hp):
    units = hp.Int("units", 8, 16, step=8)
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(10)]
    )


class RecordingSearch(kt.RandomSearch):
    ran: list = []

    def on_trial_end(self, trial):
        self.ran.append(trial.trial_id)
        super().on_trial_end(trial)


x, y = long_tailed_digits(10)
tuner = RecordingSearch(
    LossHyperModel(build_model, space="quick", class_counts=np.bincount(y).tolist()),
    objective=kt.Objective("val_balanced_accuracy", "max"),
    max_trials=MAX_TRIALS,
    directory=directory,
    project_name="distributed",
    seed=1,
)
tuner.search(x, y, validation_split=0.25, epochs=2, verbose=0)
if role == "chief":
    trials = tuner.oracle.trials
    report = {
        "trials": {tid: str(t.status) for tid, t in trials.items()},
        "best": best_config(tuner).to_dict(),
    }
else:
    report = {"ran": RecordingSearch.ran}
with open(os.path.join(directory, f"{role}.json"), "w") as handle:
    json.dump(report, handle)
