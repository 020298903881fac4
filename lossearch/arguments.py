"""Every public argument of :func:`lossearch.optimize`, declared once.

An :class:`Argument` holds a parameter's default, the constraints a valid value meets
(checked by :func:`lossearch._validation.validate_params` before the first trial), a
help line, and its command-line option, if it has one. ``optimize`` validates against
these declarations and the ``lossearch`` command builds its search options from them
(:func:`lossearch.cli` reads :func:`cli_type`), so a range or a default is changed here
and nowhere else. ``tests/test_arguments.py`` fails when they and ``optimize``'s
signature disagree.

This module imports nothing heavy: the command line reads it before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lossearch._validation import (
    BOOL,
    NON_EMPTY_STR,
    Interval,
    Options,
    Satisfies,
    problem,
    takes_positional,
)

REQUIRED = object()  # the default of a positional argument
BACKENDS = ("optuna", "keras_tuner")
TASKS = ("multiclass", "binary", "multilabel")
TUNERS = ("hyperband", "bayesian", "random", "grid")  # Keras Tuner's built-in oracles
SELECTIONS = ("robust", "best")
# lossearch splits the data itself, so per-sample weights could not follow the split either;
# class weights are the loss's to set (its weight schemes are searched): stacked on every
# scheme, they would also leave the CE baseline no plain CE.
FORBIDDEN_FIT_KWARGS = (
    "x",
    "y",
    "epochs",
    "batch_size",
    "validation_data",
    "validation_split",
    "sample_weight",
    "class_weight",
)
POSITIVE_INT = Interval(int, 1, None)
# Trial and confirmation seeds add offsets to it, and NumPy's seeds end at 2**32.
MAX_SEED = 2**31 - 1
# Each thread trains a model of its own: more than this is a typo, and more parallel work
# belongs in `lossearch worker` processes sharing the storage.
MAX_THREADS = 256


@dataclass(frozen=True)
class Argument:
    """One argument of ``optimize``.

    Args:
        name: the parameter's name.
        default: its default (:data:`REQUIRED` for a positional one).
        constraints: valid values, any one suffices (``None`` allows None).
        help: one line saying what it does.
        flag: its command-line option (``--trials``), or None when it has none.
        parse: the option's text to a value; by default the type of ``default``.
        off_help: the help of a ``--no-...`` flag (a boolean that defaults to True), which
            turns the argument off: what the command does then.
    """

    name: str
    default: Any
    constraints: tuple
    help: str
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    off_help: str | None = None


def _instance_of(path: str, doc: str) -> Satisfies:
    """``isinstance`` of a class named by its import path, imported only when checked (the
    command line reads these declarations without importing Optuna)."""
    module, _, name = path.rpartition(".")

    def holds(value) -> bool:
        return isinstance(value, getattr(importlib.import_module(module), name))

    return Satisfies(holds, doc)


def _objective_ok(value) -> bool:
    return isinstance(value, str | tuple) or callable(value)  # an Objective is callable


def _fit_kwargs_ok(value) -> bool:
    return isinstance(value, dict) and not set(value) & set(FORBIDDEN_FIT_KWARGS)


def _tracking_uri_ok(value) -> bool:
    """A non-empty URI that is no file store, which MLflow 3 refuses (after the data has
    loaded and the model been probed) unless the environment allows it."""
    if not (isinstance(value, str) and value.strip()):
        return False
    path = "://" not in value and not value.startswith("databricks")  # "databricks" is one
    file_store = value.startswith("file:") or path
    allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true")
    return not file_store or allowed


def _pair_ok(value) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2


def _sequence_ok(value) -> bool:
    """A list, a tuple or a one-dimensional array (of class names or indices)."""
    if isinstance(value, list | tuple):
        return True
    return getattr(value, "ndim", None) == 1  # a NumPy array or pandas Index


def _zero_is_none(text: str) -> int | None:
    """``--recycle-every 0``: None (in this process)."""
    value = int(text)
    return None if value == 0 else value


def _folds(text: str) -> int | str | None:
    """``--cv``: a number of folds, ``auto``, or 0 for one hold-out split (None)."""
    return text if text == "auto" else _zero_is_none(text)


_ARGUMENTS = (
    Argument(
        "build_model",
        REQUIRED,
        (Satisfies(callable, "a callable build_model() or build_model(hp)"),),
        "builds the model for each trial",
    ),
    Argument(
        "data",
        REQUIRED,
        (Satisfies(lambda v: v is not None, "(x, y), a train/validation pair or dict"),),
        "training (and validation) data",
    ),
    Argument(
        "space",
        "default",
        (
            Satisfies(
                lambda v: v is not None, "a bundled name, a YAML path, a dict or a SearchSpace"
            ),
        ),
        "the loss configs to search: a bundled name or a YAML path",
        flag="--space",
    ),
    Argument(
        "objective",
        None,
        (None, Satisfies(_objective_ok, "a name, a callable f(y_true, y_prob) or an Objective")),
        "what each trial is scored on, e.g. balanced_accuracy, pr_auc (default by task)",
        flag="--objective",
    ),
    Argument("n_trials", 30, (POSITIVE_INT,), "finished trials to run", flag="--trials"),
    Argument(
        "timeout",
        None,
        (None, Interval(float, 0, None, low_open=True)),
        "seconds after which no trial starts",
        flag="--timeout",
        parse=float,
    ),
    Argument("epochs", 20, (POSITIVE_INT,), "epochs per trial", flag="--epochs"),
    Argument("batch_size", 32, (POSITIVE_INT,), "batch size of fit", flag="--batch-size"),
    Argument(
        "validation",
        None,
        (None, Interval(float, 0, 1, low_open=True, high_open=True)),
        "hold-out fraction (None: 0.2)",
        flag="--validation",
        parse=float,
    ),
    Argument(
        "cv",
        "auto",
        (
            None,
            Interval(int, 2, None, doc="an integer number of folds >= 2"),
            Options(("auto",), "'auto'"),
        ),
        "folds, 'auto' or 0 for one hold-out split",
        flag="--cv",
        parse=_folds,
    ),
    Argument(
        "test_data",
        None,
        (None, Satisfies(_pair_ok, "(x_test, y_test)")),
        "a held-out (x, y): the pick and plain CE are scored on it once, at the end; it "
        "chooses nothing",
    ),
    Argument(
        "minority_classes",
        None,
        (None, Satisfies(_sequence_ok, "a list of class indices or names")),
        "for the minority metrics (default: below-median classes)",
    ),
    Argument(
        "task",
        None,
        (None, Options(TASKS)),
        "what the labels are, where they and the model's output leave it open (default: "
        "inferred; multi-label only on a sigmoid or logits output with clearly multi-hot rows)",
        flag="--task",
    ),
    Argument(
        "class_names",
        None,
        (None, Satisfies(_sequence_ok, "a list of one name per class")),
        "names in metrics, reports and MLflow",
    ),
    Argument(
        "sampler",
        None,
        (None, _instance_of("optuna.samplers.BaseSampler", "an Optuna sampler")),
        "Optuna's sampler (default: multivariate TPE)",
    ),
    Argument(
        "pruner",
        None,
        (None, _instance_of("optuna.pruners.BasePruner", "an Optuna pruner")),
        "Optuna's pruner (default: successive halving; recipes are never pruned, a deferred "
        "re-weighting trial not before its re-weighting starts)",
    ),
    Argument(
        "callbacks",
        None,
        (
            None,
            Satisfies(
                lambda v: isinstance(v, list | tuple) and all(takes_positional(c, 2) for c in v),
                "a list of Optuna callbacks, each called as callback(study, frozen_trial)",
            ),
        ),
        "Optuna study callbacks, called after each trial",
    ),
    Argument(
        "storage",
        None,
        (
            None,
            Satisfies(lambda v: isinstance(v, str), "an Optuna URL"),
            _instance_of("optuna.storages.BaseStorage", "an Optuna storage"),
        ),
        "Optuna storage URL",
        flag="--storage",
    ),
    Argument("study_name", None, (None, NON_EMPTY_STR), "study name (resumable)", flag="--study"),
    Argument(
        "tracking_uri",
        None,
        (
            None,
            Satisfies(
                _tracking_uri_ok,
                "a tracking database (sqlite:///mlflow.db) or server (http://host:5000): MLflow "
                "3 refuses its file store (file:///..., a folder) unless "
                "MLFLOW_ALLOW_FILE_STORE=true is set",
            ),
        ),
        "MLflow tracking URI",
        flag="--tracking-uri",
    ),
    Argument(
        "experiment_name",
        "lossearch",
        (NON_EMPTY_STR,),
        "MLflow experiment name",
        flag="--experiment",
    ),
    Argument(
        "seed",
        None,
        (None, Interval(int, 0, MAX_SEED)),
        "seeds splits and trials",
        flag="--seed",
        parse=int,
    ),
    Argument(
        "n_jobs",
        1,
        (Interval(int, 1, MAX_THREADS), Options((-1,), "-1 for all cores")),
        "trials run in threads of this process",
    ),
    Argument(
        "recycle_every",
        None,
        (None, POSITIVE_INT),
        "train in a child process replaced every N trainings, for flat memory (0: in this process)",
        flag="--recycle-every",
        parse=_zero_is_none,
    ),
    Argument(
        "fit_kwargs",
        None,
        (
            None,
            Satisfies(
                _fit_kwargs_ok,
                f"a dict of extra model.fit arguments without {list(FORBIDDEN_FIT_KWARGS)} (set "
                "them with optimize's epochs=, batch_size=, validation= / data=; class weights "
                "are searched as the loss's weight schemes)",
            ),
        ),
        "extra model.fit arguments, e.g. callbacks",
    ),
    Argument("refit", True, (BOOL,), "retrain the pick on train + validation"),
    Argument("log_model", True, (BOOL,), "log the refit model to MLflow"),
    Argument(
        "registered_model_name",
        None,
        (None, NON_EMPTY_STR),
        "retrain the pick, log it to MLflow and register it in the model registry as NAME",
        flag="--register-model",
    ),
    Argument(
        "show_progress",
        True,
        (BOOL,),
        "show a progress bar of the trials",
        flag="--no-progress",
        off_help="no progress bar",
    ),
    Argument(
        "selection",
        "robust",
        (Options(SELECTIONS),),
        "how the pick is made: robust keeps the recipe declared before the search (logit "
        "adjustment for a class-averaged objective on multiclass, else plain CE) unless "
        "another config beats it clearly on fresh seeds; best takes the top trial",
        flag="--selection",
    ),
    Argument(
        "confirm_seeds",
        2,
        (Interval(int, 0, None),),
        "extra seeds each candidate is retrained on before the pick (0: none)",
        flag="--confirm-seeds",
    ),
    Argument(
        "decision",
        True,
        (BOOL,),
        "tune a decision rule (logit adjustment, or a threshold) with each trial and export it "
        "with the loss",
        flag="--no-decision",
        off_help="keep arg-max / 0.5 instead of tuning a decision rule",
    ),
    Argument(
        "early_stop",
        True,
        (BOOL, _instance_of("lossearch.stopping.BaseStopper", "a lossearch.stopping.BaseStopper")),
        "stop once 10 sampled trials have not beaten the recipe declared before the search by "
        "more than its noise (a stopper of lossearch.stopping chooses another rule)",
        flag="--no-early-stop",
        off_help="search the whole budget even when no sampled trial beats the recipe declared "
        "before the search by more than its noise",
    ),
    Argument("backend", "optuna", (Options(BACKENDS),), "who proposes configs"),
    Argument("tuner", "hyperband", (Options(TUNERS),), "Keras Tuner's oracle"),
)
OPTIMIZE_ARGUMENTS: Mapping[str, Argument] = {a.name: a for a in _ARGUMENTS}
OPTIMIZE_CONSTRAINTS: dict[str, list] = {a.name: list(a.constraints) for a in _ARGUMENTS}


def cli_type(argument: Argument) -> Callable[[str], Any]:
    """An argparse ``type`` for ``argument``'s option: its text parsed, then checked
    against the same constraints as ``optimize`` (``expected ..., got ...``)."""
    parse = argument.parse or _parser_of(argument.default)

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = text
        wrong = problem(value, argument.constraints)
        if wrong:
            raise argparse.ArgumentTypeError(f"{wrong}, got {text!r}")
        return value

    convert.__name__ = argument.name  # argparse names the type in its messages
    return convert


def _parser_of(default: Any) -> Callable[[str], Any]:
    return int if isinstance(default, int) and not isinstance(default, bool) else str


def cli_options(argument: Argument) -> dict[str, Any]:
    """``add_argument`` keywords for ``argument``'s option (a ``--no-...`` flag for a
    boolean that defaults to True)."""
    if isinstance(argument.default, bool):
        if argument.default:
            return {"dest": argument.name, "action": "store_false", "help": argument.off_help}
        return {"dest": argument.name, "action": "store_true", "help": argument.help}
    return {
        "dest": argument.name,
        "metavar": argument.flag.lstrip("-").upper().replace("-", "_"),
        "type": cli_type(argument),
        "default": argument.default,
        "help": argument.help,
    }
