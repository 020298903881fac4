"""What a study stores, with one owner: every key, and reading trials back as records.

A lossearch study is self-contained. Each trial keeps its loss config, metrics and
decision rule as Optuna user attributes, and the study keeps the search's selection and
its MLflow parent run's description, so ``lossearch export``, ``lossearch report`` and
``lossearch sync-mlflow`` need neither the data nor MLflow (they read a study through
:class:`lossearch.stored.StoredStudy`). Every key is written and read through this
module and the drivers; which trial is the pick or the baseline is decided by
:mod:`lossearch.selection` alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossearch.config import LossConfig
from lossearch.decision import Decision

# -- keys of a trial's user attributes -----------------------------------------------------
CONFIG = "config"  # LossConfig.to_dict()
METRICS = "metrics"  # Metrics.to_dict() of the validation predictions
RECIPE = "recipe"  # the recipe's name, for trials the space queued first
DECISION = "decision"  # Decision.to_dict(), the trial's tuned decision rule
EPOCHS_TRAINED = "epochs_trained"
EPOCH_LOSS = "epoch_loss"  # training loss per epoch, for sync-mlflow
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"  # Ctrl-C: a rerun queues the recipe again
DUPLICATE_OF = "duplicate_of"  # a re-drawn config, scored by its twin
MLFLOW_RUN = "mlflow_run_id"  # lets whoever finds the trial stale close its run
PROCESS = "process"  # _processes.this_process() of the worker running the trial

# -- keys of the study's user attributes ----------------------------------------------------
PARENT_RUN = "mlflow_parent_run_id"
CHOICE = "lossearch_choice"  # Selection.to_dict(), written by the worker that closes
SECONDS = "lossearch_seconds"  # wall time per phase of the worker that closed
IMPORTANCES = "lossearch_importances"  # parameter importances when it closed (fANOVA)
TEST = "lossearch_test"  # the pick and plain CE scored on test_data, when given
PARENT_RUN_DESCRIPTION = "lossearch_parent_run"  # SearchRun.to_dict(): its params and tags
WORKERS = "lossearch_workers"  # how many workers have joined
OBJECTIVE = "lossearch_objective"  # names the per-epoch series
FINISHED_WITH = "lossearch_finished_with"  # finished trials when the search last closed
STARTED_WITH = "lossearch_started_with"  # search_signature() of the first worker
STOPPED_EARLY = "lossearch_stopped_early"  # why the search stopped before its budget, or None
CONTENDERS = "lossearch_contenders"  # after an early stop: the trials the confirmation may race


def search_signature(space, runner, seed: int | None) -> dict[str, Any]:
    """What makes two workers' trials comparable: the space, the objective, the data and
    how each trial trains (epochs, batch size, the seed that splits the data).

    Kept in the study by the first worker; a worker whose signature differs is refused
    (its draws would not fit the study's distributions, its scores not the others').
    """
    data = runner.data
    definition = (
        space.families,
        space.weights,
        space.label_smoothing,
        space.drw_start,
        space.recipes,
    )
    # Order-free, so that workers whose splits were shuffled differently still match.
    split = data.splits[0]
    arrays = [a for a in (split.x_train, split.x_val) if isinstance(a, np.ndarray)]
    total = sum(float(np.sum(a, dtype=np.float64)) for a in arrays) if arrays else None
    features = list(arrays[0].shape[1:]) if arrays else None
    return {
        "space": f"{space.name} ({hashlib.sha256(repr(definition).encode()).hexdigest()[:12]})",
        "objective": runner.objective.name,
        "data": f"{data.task}, class counts {list(data.class_counts)}, features {features}"
        + ("" if total is None else f", sum {total:.9g}"),
        "training": f"{runner.epochs} epochs, batch size {runner.batch_size}, "
        + ("no seed" if seed is None else f"seed {seed}"),
    }


def signature_differences(started: Mapping[str, Any], mine: Mapping[str, Any]) -> list[str]:
    """``"space: 'quick (ab12..)' here, 'long_tail (cd34..)' in the study"``, per difference
    (a key the study's first worker did not record, written by an older lossearch, is not
    compared)."""
    return [
        f"{key}: {mine.get(key)!r} here, {started.get(key)!r} in the study"
        for key in sorted(started)
        if started.get(key) != mine.get(key)
    ]


# Parameter names the space draws; anything else without a dot is the user's own ``hp``.
LOSS_PARAM_NAMES = ("family", "weights", "label_smoothing", "drw_start")


def user_hp_values(values: Mapping[str, Any]) -> dict:
    """The user's own hyperparameters: not the loss's, not a tuner's bookkeeping."""
    return {
        k: v
        for k, v in values.items()
        if not k.startswith("tuner/") and "." not in k and k not in LOSS_PARAM_NAMES
    }


@dataclass
class TrialRecord:
    """A completed trial as a search keeps it (for selection, the result and reports).

    ``y_prob`` / ``y_score`` (the predictions without and with the decision rule) exist
    only in the process that ran the trial; a record read from a study has neither.
    """

    number: int
    value: float
    config: LossConfig
    hp_values: dict
    recipe: str | None
    y_prob: Any = None
    metrics: dict | None = None
    epochs_trained: int = 0
    decision: Decision | None = None
    y_score: Any = None

    @property
    def scores(self):
        """The predictions the objective was computed on."""
        return self.y_prob if self.y_score is None else self.y_score


# -- writing and reading a trial -------------------------------------------------------------


def write_completed(trial, record: TrialRecord) -> None:
    """Store a completed trial's results on its Optuna ``trial``."""
    trial.set_user_attr(METRICS, record.metrics)
    trial.set_user_attr(EPOCHS_TRAINED, record.epochs_trained)
    if record.decision is not None:
        trial.set_user_attr(DECISION, record.decision.to_dict())


def config_of(trial) -> LossConfig:
    return LossConfig.from_dict(trial.user_attrs[CONFIG], source=f"trial {trial.number}")


def decision_of(trial) -> Decision | None:
    data = trial.user_attrs.get(DECISION)
    return None if data is None else Decision.from_dict(data)


def record_of(trial) -> TrialRecord:
    """A stored (frozen) completed trial as a record, without its predictions."""
    return TrialRecord(
        trial.number,
        trial.value,
        config_of(trial),
        user_hp_values(trial.params),
        trial.user_attrs.get(RECIPE),
        metrics=trial.user_attrs.get(METRICS, {}),
        epochs_trained=trial.user_attrs.get(EPOCHS_TRAINED, 0),
        decision=decision_of(trial),
    )


def is_lossearch_trial(trial) -> bool:
    """Written by lossearch, and a measurement in its own right (not a replayed twin)."""
    return CONFIG in trial.user_attrs and DUPLICATE_OF not in trial.user_attrs
