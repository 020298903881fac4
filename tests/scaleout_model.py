"""The model and data that scale-out tests hand to ``lossearch worker`` processes."""

import keras

from lossearch.datasets import long_tailed_digits


def build_model():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def load_data():
    return long_tailed_digits(imbalance=10)


def worker_command(
    storage,
    study,
    tracking_uri,
    experiment,
    trials,
    *extra,
    space="quick",
    recycle=False,
    threads=1,
):
    """``lossearch worker`` on this module's model and data, ``threads`` threads (None: as
    the process has them), top-trial selection; trainings in the worker's own process unless
    ``recycle`` (the worker's default)."""
    import os
    import sys

    options = {
        "--storage": storage,
        "--study": study,
        "--trials": trials,
        "--space": space,
        "--batch-size": 64,
        "--selection": "best",
        "--cv": 0,  # one hold-out: "auto" would score these tails out of fold, 3x the training
        "--threads": threads,
        "--tracking-uri": tracking_uri,
        "--experiment": experiment,
        "-o": os.devnull,
    }
    if not recycle:
        options["--recycle-every"] = 0
    if threads is None:
        del options["--threads"]
    return [
        sys.executable,
        "-m",
        "lossearch.cli",
        "worker",
        "tests.scaleout_model:build_model",
        "--data",
        "tests.scaleout_model:load_data",
        *[str(part) for pair in options.items() for part in pair],
        "--no-progress",
        *extra,
    ]
