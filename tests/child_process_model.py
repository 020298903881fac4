"""Models a child training process can import (``recycle_every`` pickles them by name)."""

import multiprocessing
import os

import keras

# env: the first build in a child process to find this file kills that process
CRASH_FILE = "LOSSEARCH_TEST_CRASH_FILE"
PID_FOLDER = "LOSSEARCH_TEST_PID_FOLDER"  # env: every build leaves a file named by its pid


def build_model(hp):
    """A small MLP for 64 features and 10 classes; records the process it was built in."""
    if os.environ.get(PID_FOLDER):
        with open(os.path.join(os.environ[PID_FOLDER], str(os.getpid())), "a") as marks:
            marks.write("built\n")
    crash = os.environ.get(CRASH_FILE)
    if crash and os.path.exists(crash) and multiprocessing.parent_process() is not None:
        os.remove(crash)
        os._exit(3)  # like the kernel's OOM killer: no exception, no goodbye
    units = hp.Int("units", 8, 16, step=8)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def build_failing(hp):
    """Draws its hyperparameter, then raises in a child process (the probe here passes)."""
    model = build_model(hp)
    if multiprocessing.parent_process() is not None:
        raise ArithmeticError("this builder always fails")
    return model
