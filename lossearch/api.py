"""``lossearch.optimize``: validate the arguments, prepare the data, run a search session."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from lossearch._validation import (
    BOOL,
    NON_EMPTY_STR,
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    takes_positional,
    validate_params,
)
from lossearch.backends import BACKENDS, TUNERS, create_driver
from lossearch.child_process import ChildProcessRunner
from lossearch.data import prepare_data
from lossearch.metrics import resolve_minority_classes, resolve_objective
from lossearch.models import check_inputs, model_builder, probe_model
from lossearch.records import load_best_config
from lossearch.result import SearchResult
from lossearch.runner import FORBIDDEN_FIT_KWARGS, TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.session import SearchSession
from lossearch.settings import SearchSettings, resolve_storage, storage_name
from lossearch.storages import open_storage
from lossearch.tracking import Tracker

__all__ = ["load_best_config", "optimize"]

SELECTIONS = ("robust", "best")
POSITIVE_INT = Interval(int, 1, None)


def _fit_kwargs_ok(value) -> bool:
    return isinstance(value, dict) and not set(value) & set(FORBIDDEN_FIT_KWARGS)


OPTIMIZE_CONSTRAINTS = {
    "n_trials": [POSITIVE_INT],
    "timeout": [None, Interval(float, 0, None, low_open=True)],
    "epochs": [POSITIVE_INT],
    "batch_size": [POSITIVE_INT],
    "validation": [None, Interval(float, 0, 1, low_open=True, high_open=True)],
    "cv": [
        None,
        Interval(int, 2, None, doc="an integer number of folds >= 2"),
        Options(("auto",), "'auto'"),
    ],
    "seed": [None, Interval(int, 0, None)],
    "n_jobs": [POSITIVE_INT, Options((-1,), "-1 for all cores")],
    "recycle_every": [None, POSITIVE_INT],
    "fit_kwargs": [
        None,
        Satisfies(
            _fit_kwargs_ok,
            f"a dict of extra model.fit arguments without {list(FORBIDDEN_FIT_KWARGS)} (set "
            "them with optimize's epochs=, batch_size=, validation= / data=)",
        ),
    ],
    "storage": [None, InstanceOf((str, optuna.storages.BaseStorage), "an Optuna URL or storage")],
    "study_name": [None, NON_EMPTY_STR],
    "experiment_name": [NON_EMPTY_STR],
    "selection": [Options(SELECTIONS)],
    "confirm_seeds": [Interval(int, 0, None)],
    "refit": [BOOL],
    "log_model": [BOOL],
    "registered_model_name": [None, NON_EMPTY_STR],
    "show_progress": [BOOL],
    "decision": [BOOL],
    "backend": [Options(BACKENDS)],
    "tuner": [Options(TUNERS)],
    "sampler": [None, InstanceOf((optuna.samplers.BaseSampler,), "an Optuna sampler")],
    "pruner": [None, InstanceOf((optuna.pruners.BasePruner,), "an Optuna pruner")],
    "callbacks": [
        None,
        Satisfies(
            lambda v: isinstance(v, list | tuple) and all(takes_positional(c, 2) for c in v),
            "a list of Optuna callbacks, each called as callback(study, frozen_trial)",
        ),
    ],
}


@validate_params(OPTIMIZE_CONSTRAINTS)
def optimize(
    build_model: Callable,
    data,
    *,
    space: Any = "default",
    objective: Any = None,
    n_trials: int = 30,
    timeout: float | None = None,
    epochs: int = 20,
    batch_size: int = 32,
    validation: float | None = None,
    cv: int | str | None = "auto",
    minority_classes: Sequence[int | str] | None = None,
    class_names: Sequence[str] | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    callbacks: Sequence[Callable] | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    tracking_uri: str | None = None,
    experiment_name: str = "lossearch",
    seed: int | None = None,
    n_jobs: int = 1,
    recycle_every: int | None = None,
    fit_kwargs: dict | None = None,
    refit: bool = True,
    log_model: bool = True,
    registered_model_name: str | None = None,
    show_progress: bool = True,
    selection: str = "robust",
    confirm_seeds: int = 2,
    decision: bool = True,
    backend: str = "optuna",
    tuner: str = "hyperband",
) -> SearchResult:
    """Search loss families, their parameters and class weighting for ``build_model``.

    Every argument is checked before the first trial: bad input is a ``ValueError``
    naming the argument. What each argument does: ``docs/arguments.md``.

    Args:
        build_model: ``build_model()`` or ``build_model(hp)`` returning a Keras model.
        data: ``(x, y)``, ``((x, y), (x_val, y_val))``, ``{"train": .., "validation": ..}``
            or a pair of ``tf.data.Dataset``.

    Returns:
        A :class:`SearchResult`: the chosen config, its metrics beside the CE baseline's,
        the refit model, the study and the MLflow parent run.

    Example:
        >>> result = lossearch.optimize(build_model, (x, y), n_trials=20)  # doctest: +SKIP
        >>> result.best_config.to_json("best_loss.json")                  # doctest: +SKIP
    """
    arguments = dict(locals())
    _check_combinations(arguments)
    runner, search_space = _prepare(arguments)
    try:
        settings = _settings(arguments)  # opens the storage: a bad URL fails before any trial
        tracker = Tracker(tracking_uri, experiment_name)  # fails fast when unreachable
        driver = create_driver(runner, search_space, tracker, settings)
        return SearchSession(runner, search_space, tracker, driver, settings).run()
    finally:
        runner.close()


def _prepare(arguments: dict) -> tuple[TrialRunner | ChildProcessRunner, SearchSpace]:
    """Probe the model, check and split the data, load the space: the trial runner (in a
    child process with ``recycle_every``)."""
    facts = probe_model(model_builder(arguments["build_model"]))
    prepared = prepare_data(
        arguments["data"],
        output_shape=facts.output_shape,
        activation=facts.activation,
        validation=arguments["validation"],
        cv=arguments["cv"],
        class_names=arguments["class_names"],
        seed=arguments["seed"],
    )
    check_inputs(facts, prepared.splits[0].x_train)
    search_space = SearchSpace.load(arguments["space"], task=prepared.task)
    runner = _runner(arguments, prepared, facts)
    if arguments["recycle_every"] is not None:
        runner = ChildProcessRunner(runner, arguments["recycle_every"])
        runner.start()  # a child that cannot load the model fails here, not in a trial
    return runner, search_space


def _runner(arguments: dict, prepared, facts) -> TrialRunner:
    return TrialRunner(
        arguments["build_model"],
        prepared,
        resolve_objective(arguments["objective"], prepared.task),
        minority_classes=resolve_minority_classes(
            arguments["minority_classes"],
            prepared.class_names,
            prepared.class_counts,
            prepared.task,
        ),
        facts=facts,
        epochs=arguments["epochs"],
        batch_size=arguments["batch_size"],
        fit_kwargs=arguments["fit_kwargs"],
        decision=arguments["decision"],
    )


def _check_combinations(arguments: dict) -> None:
    if arguments["backend"] == "keras_tuner" and any(
        arguments[name] is not None for name in ("sampler", "pruner", "storage", "callbacks")
    ):
        raise ValueError(
            "sampler, pruner, storage and callbacks: Optuna settings; the Keras Tuner backend "
            "takes tuner= (and study_name= to resume a tuner project)."
        )
    name = arguments["study_name"]
    if arguments["backend"] == "keras_tuner" and name is not None and not _plain_name(name):
        raise ValueError(
            f"study_name: {name!r} names the Keras Tuner project's folder; use a plain name "
            "(no '/', '\\', '..' or leading '.')."
        )
    if arguments["registered_model_name"] is not None and not (
        arguments["refit"] and arguments["log_model"]
    ):
        raise ValueError(
            "registered_model_name: registers the refit model logged to MLflow; it needs "
            "refit=True and log_model=True."
        )


def _plain_name(name: str) -> bool:
    """A name that stays one folder inside its parent: no separators, no ``..``."""
    return not (set(name) & {"/", "\\", "\0"}) and not name.startswith(".")


def _settings(arguments: dict) -> SearchSettings:
    """The search's own arguments as :class:`SearchSettings`, with the storage opened."""
    fields = {f.name for f in dataclasses.fields(SearchSettings)}
    values = {k: v for k, v in arguments.items() if k in fields}
    settings = SearchSettings(**{**values, "callbacks": tuple(arguments["callbacks"] or ())})
    storage = resolve_storage(settings.storage, settings.study_name)
    opened = open_storage(storage) if settings.backend == "optuna" else None
    return dataclasses.replace(settings, storage=opened, storage_name=storage_name(storage))
