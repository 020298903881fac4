"""``lossearch.optimize``: validate the arguments, prepare the trial runner, run a session.

Every argument is declared once in :mod:`lossearch.arguments` (default, constraints, help,
command-line option); ``optimize`` builds its typed settings from them explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from typing import Any

from lossearch._validation import validate_params
from lossearch.arguments import OPTIMIZE_CONSTRAINTS
from lossearch.child_process import ChildProcessRunner
from lossearch.data import prepare_data, prepared_test
from lossearch.metrics import resolve_minority_classes, resolve_objective
from lossearch.models import check_inputs, model_builder, probe_model
from lossearch.result import SearchResult
from lossearch.runner import TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.session import build_session
from lossearch.settings import SearchSettings
from lossearch.study.stored import load_best_config

__all__ = ["load_best_config", "optimize"]


@validate_params(OPTIMIZE_CONSTRAINTS, complete=True)
def optimize(
    build_model: Callable,
    data: Any,
    *,
    space: Any = "default",
    objective: Any = None,
    n_trials: int = 30,
    timeout: float | None = None,
    epochs: int = 20,
    batch_size: int = 32,
    validation: float | None = None,
    cv: int | str | None = "auto",
    test_data: Any = None,
    minority_classes: Sequence[int | str] | None = None,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    callbacks: Sequence[Callable] | None = None,
    storage: Any = None,
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
    early_stop: Any = True,
    backend: str = "optuna",
    tuner: str = "hyperband",
) -> SearchResult:
    """Search loss families, their parameters and class weighting for ``build_model``.

    Every argument is checked before the first trial (a ``ValueError`` naming it); what each
    does: ``docs/arguments.md``. Example: ``optimize(build_model, (x, y))``."""
    # fmt: off
    settings = SearchSettings(
        n_trials=n_trials, timeout=timeout, seed=seed, n_jobs=n_jobs, refit=refit,
        log_model=log_model, registered_model_name=registered_model_name,
        show_progress=show_progress, selection=selection, confirm_seeds=confirm_seeds,
        backend=backend, tuner=tuner, sampler=sampler, pruner=pruner,
        callbacks=tuple(callbacks or ()), early_stop=early_stop, storage=storage,
        study_name=study_name, tracking_uri=tracking_uri, experiment_name=experiment_name,
    )  # a table, each argument by name; checks their combinations before the model's probed
    runner, search_space = prepare_runner(
        build_model, data, space, objective=objective, epochs=epochs, batch_size=batch_size,
        validation=validation, cv=cv, minority_classes=minority_classes, seed=seed,
        class_names=class_names, fit_kwargs=fit_kwargs, decision=decision,
        recycle_every=recycle_every, test_data=test_data, task=task,
    )
    # fmt: on
    with closing(runner):  # a child process (recycle_every) ends with the search
        return build_session(runner, search_space, settings).run()


def prepare_runner(
    build_model: Callable,
    data: Any,
    space: Any,
    *,
    objective: Any,
    epochs: int,
    batch_size: int,
    validation: float | None,
    cv: int | str | None,
    minority_classes: Sequence[int | str] | None,
    class_names: Sequence[str] | None,
    fit_kwargs: dict | None,
    decision: bool,
    seed: int | None,
    recycle_every: int | None,
    test_data: Any = None,
    task: str | None = None,
) -> tuple[TrialRunner | ChildProcessRunner, SearchSpace]:
    """Probe the model, check and split the data, load the space: the trial runner every
    backend shares (in a child process replaced every ``recycle_every`` trainings)."""
    facts = probe_model(model_builder(build_model))
    prepared = prepare_data(
        data,
        output_shape=facts.output_shape,
        activation=facts.activation,
        validation=validation,
        cv=cv,
        class_names=class_names,
        seed=seed,
        task=task,
    )
    check_inputs(facts, prepared.splits[0].x_train)
    prepared = prepared_test(test_data, prepared, facts.output_shape, facts.activation)
    search_space = SearchSpace.load(space, task=prepared.task)
    runner = TrialRunner(
        build_model,
        prepared,
        resolve_objective(objective, prepared.task),
        minority_classes=resolve_minority_classes(
            minority_classes, prepared.class_names, prepared.class_counts, prepared.task
        ),
        facts=facts,
        epochs=epochs,
        batch_size=batch_size,
        fit_kwargs=fit_kwargs,
        decision=decision,
    )
    if recycle_every is not None:
        runner = ChildProcessRunner(runner, recycle_every)
        runner.start()  # a child that cannot load the model fails here, not in a trial
    return runner, search_space
