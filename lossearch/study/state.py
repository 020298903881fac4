"""What a search stores, with one owner: every key, the state that holds them, and reading
trials back as records.

A lossearch search is self-contained. Each trial keeps its loss config, metrics and
decision rule, and the search keeps its selection and its MLflow parent run's description,
so ``lossearch export``, ``report`` and ``sync-mlflow`` need neither the data nor MLflow
(they read a search through :class:`lossearch.study.stored.StoredStudy`). Where it is kept
depends on the backend, and :class:`StudyState` hides which: an Optuna study's user
attributes (:class:`OptunaStudyState`), or a Keras Tuner project's ``lossearch.json``
(:class:`KerasTunerState`). Nothing else writes them (``tests/test_architecture.py``);
which trial is the pick or the baseline is decided by :mod:`lossearch.selection` alone.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
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


def completed_attrs(record: TrialRecord) -> dict[str, Any]:
    """A completed trial's results, by trial key."""
    values = {METRICS: record.metrics, EPOCHS_TRAINED: record.epochs_trained}
    if record.decision is not None:
        values[DECISION] = record.decision.to_dict()
    return values


def write_completed(trial, record: TrialRecord) -> None:
    """Store a completed trial's results on its Optuna ``trial``."""
    set_trial_attrs(trial, completed_attrs(record))


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


# -- where a search keeps them -------------------------------------------------------------

TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
KERAS_TUNER_SCHEME = "keras_tuner"  # keras_tuner:///folder: the projects of a tuner folder
KERAS_TUNER_FILE = "lossearch.json"  # in the project folder, beside Keras Tuner's own files


@dataclass
class StoredTrial:
    """One trial as a search keeps it, whatever the backend (Optuna's ``FrozenTrial`` reads
    the same way): its state, value, drawn parameters and the values under the keys above,
    and the objective after each epoch."""

    number: int
    state: str  # one of TRIAL_STATES
    value: float | None = None
    params: dict = field(default_factory=dict)
    user_attrs: dict = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)


class StudyState(abc.ABC):
    """What one search stores: its values under the study keys above and its trials."""

    name: str
    direction: str  # "maximize" or "minimize"

    @property
    @abc.abstractmethod
    def attrs(self) -> Mapping[str, Any]:
        """The search's values, by study key."""

    @abc.abstractmethod
    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` under the study key ``key``."""

    @abc.abstractmethod
    def trials(self, states: Iterable[str] | None = None) -> list[StoredTrial]:
        """Every trial (in ``states`` only, when given), by number."""

    @property
    def metric_name(self) -> str:
        """What the value is called where the search did not say (a study of your own)."""
        return "value"

    def trials_dataframe(self):
        """The trials as Optuna's ``trials_dataframe`` lays them out (MLflow's trials.csv),
        without the bulky config, metrics and decision columns."""
        import pandas as pd

        rows = [
            {
                "number": t.number,
                "state": t.state,
                "value": math.nan if t.value is None else t.value,
                **{f"params_{k}": v for k, v in t.params.items() if v is not None},
                **{
                    f"user_attrs_{k}": v
                    for k, v in t.user_attrs.items()
                    if k not in (CONFIG, METRICS, DECISION)
                },
            }
            for t in self.trials()
        ]
        return pd.DataFrame(rows)


class OptunaStudyState(StudyState):
    """An Optuna study's user attributes (the study's and its trials')."""

    def __init__(self, study):
        self.study = study
        self.name = study.study_name
        self.direction = study.direction.name.lower()

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self.study.user_attrs

    def set(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, value)

    def trials(self, states: Iterable[str] | None = None) -> list[StoredTrial]:
        from optuna.trial import TrialState

        wanted = None if states is None else tuple(TrialState[s] for s in states)
        return [stored_trial(t) for t in self.study.get_trials(deepcopy=False, states=wanted)]

    @property
    def metric_name(self) -> str:
        return (getattr(self.study, "metric_names", None) or ["value"])[0]

    def trials_dataframe(self):
        frame = self.study.trials_dataframe(
            attrs=("number", "state", "value", "params", "duration", "user_attrs")
        )
        bulky = {f"user_attrs_{k}" for k in (CONFIG, METRICS, DECISION)}
        return frame.drop(columns=[c for c in frame.columns if c in bulky])


def stored_trial(frozen) -> StoredTrial:
    """An Optuna ``FrozenTrial`` as a :class:`StoredTrial`."""
    return StoredTrial(
        frozen.number,
        frozen.state.name,
        frozen.value,
        frozen.params,
        frozen.user_attrs,
        frozen.intermediate_values,
    )


def set_trial_attrs(trial, values: Mapping[str, Any]) -> None:
    """Keep ``values`` (by trial key) on a running Optuna ``trial``."""
    for key, value in values.items():
        trial.set_user_attr(key, value)


class KerasTunerState(StudyState):
    """A Keras Tuner search's ``lossearch.json``, in its project folder: the search's values
    and one entry per trial, rewritten whole (never half) after each change."""

    def __init__(self, project_dir: str | Path, name: str, direction: str | None):
        self.path = Path(project_dir) / KERAS_TUNER_FILE
        self.name, self.direction = name, direction
        self._saved = self._read() if self.path.exists() else {}

    @classmethod
    def open(cls, project_dir: str | Path) -> KerasTunerState:
        """The state of an existing search (``ValueError`` naming what is missing)."""
        found = cls(project_dir, Path(project_dir).name, None)
        if not found.path.is_file():
            raise ValueError(
                f"storage: no lossearch search in the Keras Tuner folder {str(project_dir)!r} "
                f"(no {KERAS_TUNER_FILE})."
            )
        found.name = found._saved.get("name", found.name)
        found.direction = found._saved.get("direction", "maximize")
        return found

    def _read(self) -> dict:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"storage: {str(self.path)!r} is not readable: {exc}") from None
        # written before trials were kept here: the search's values were the whole file
        return saved if "attrs" in saved else {"attrs": saved, "trials": {}}

    def _update(self, section: str, key: str, value: Any) -> None:
        """Set one entry and rewrite the file, under a lock and over what is on disk: the
        workers of Keras Tuner's distributed mode each keep their own trials here."""
        import fcntl

        from lossearch._files import write_text

        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                self._saved = self._read()
            self._saved.setdefault(section, {})[key] = value
            self._saved.update(name=self.name, direction=self.direction)
            write_text(self.path, json.dumps(self._saved))

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self._saved.get("attrs", {})

    def set(self, key: str, value: Any) -> None:
        self._update("attrs", key, value)

    def save_trial(self, trial: StoredTrial) -> None:
        """Keep ``trial`` (a trial run again, as Hyperband does, replaces its entry)."""
        entry = asdict(trial)
        entry["intermediate_values"] = {str(k): v for k, v in trial.intermediate_values.items()}
        self._update("trials", str(trial.number), entry)

    def trials(self, states: Iterable[str] | None = None) -> list[StoredTrial]:
        if self.path.exists():  # with the trials other workers kept meanwhile
            self._saved = self._read()
        wanted = None if states is None else set(states)
        out = []
        for entry in self._saved.get("trials", {}).values():
            steps = {int(k): v for k, v in entry.get("intermediate_values", {}).items()}
            trial = StoredTrial(**{**entry, "intermediate_values": steps})
            if wanted is None or trial.state in wanted:
                out.append(trial)
        return sorted(out, key=lambda t: t.number)


def open_state(storage: str, study_name: str) -> StudyState:
    """A stored search: an Optuna study at the storage URL, or with
    ``keras_tuner:///FOLDER`` the Keras Tuner project ``study_name`` in ``FOLDER`` (three
    slashes for a relative path, four for an absolute one, as SQLite's URLs)."""
    if isinstance(storage, str) and storage.startswith(f"{KERAS_TUNER_SCHEME}://"):
        folder = Path(storage.split("://", 1)[1][1:] or ".")
        if not folder.is_dir():
            raise ValueError(f"storage: no Keras Tuner folder {str(folder)!r}.")
        project = folder / study_name
        if not (project / KERAS_TUNER_FILE).is_file():
            found = sorted(p.parent.name for p in folder.glob(f"*/{KERAS_TUNER_FILE}"))
            raise ValueError(
                f"study: no lossearch search named {study_name!r} in {str(folder)!r}; "
                f"searches there: {found}."
            )
        return KerasTunerState.open(project)
    from lossearch.study.storages import load_study

    return OptunaStudyState(load_study(storage, study_name))
