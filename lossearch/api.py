"""``lossearch.optimize``: the search, from the user's model builder and data to a loss."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import optuna
from optuna.trial import TrialState

from lossearch import plots
from lossearch.backends.optuna import (
    CHOICE_ATTR,
    OptunaSearch,
    default_pruner,
    default_sampler,
)
from lossearch.callbacks import callbacks_for
from lossearch.config import LossConfig
from lossearch.data import prepare_data
from lossearch.decision import with_decision
from lossearch.metrics import default_minority_classes, resolve_objective
from lossearch.report import ReportContent, render_html, search_figures
from lossearch.result import SearchResult
from lossearch.runner import (
    FORBIDDEN_FIT_KWARGS,
    TrialRecord,
    TrialRunner,
    model_builder,
    probe_model,
)
from lossearch.search_space import SearchSpace
from lossearch.selection import (
    FixedHyperParameters,
    baseline_record,
    select,
    validation_support,
    validation_warnings,
)
from lossearch.storages import load_study, open_storage
from lossearch.tracking import Tracker, mask_credentials

DEFAULT_STORAGE = "sqlite:///lossearch.db"
BACKENDS = ("optuna", "keras_tuner")
SELECTIONS = ("robust", "best")


def _check_int(name, value, low, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}.")


def _check_arguments(
    *,
    n_trials,
    timeout,
    epochs,
    batch_size,
    n_jobs,
    fit_kwargs,
    storage,
    study_name,
    experiment_name,
    selection,
    confirm_seeds,
    seed,
):
    _check_int("n_trials", n_trials, 1)
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("confirm_seeds", confirm_seeds, 0)
    _check_int("seed", seed, 0, allow_none=True)
    if not (
        n_jobs == -1 or (isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs >= 1)
    ):
        raise ValueError(f"n_jobs: expected an integer >= 1 (or -1 for all cores), got {n_jobs!r}.")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ValueError(f"timeout: expected seconds > 0 or None, got {timeout!r}.")
    if fit_kwargs is not None:
        if not isinstance(fit_kwargs, dict):
            raise ValueError("fit_kwargs: expected a dict of extra model.fit arguments.")
        clash = sorted(set(fit_kwargs) & set(FORBIDDEN_FIT_KWARGS))
        if clash:
            raise ValueError(
                f"fit_kwargs: {clash} are set by optimize itself; use its epochs=, batch_size=, "
                "validation= / data= arguments instead."
            )
    if storage is not None and not isinstance(storage, str | optuna.storages.BaseStorage):
        raise ValueError(
            f"storage: expected an Optuna storage URL or object, got {type(storage).__name__}."
        )
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ValueError(f"study_name: expected a non-empty string, got {study_name!r}.")
    if not isinstance(experiment_name, str) or not experiment_name.strip():
        raise ValueError(f"experiment_name: expected a non-empty string, got {experiment_name!r}.")
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {list(SELECTIONS)}, got {selection!r}.")


def _minority(minority_classes, class_names: list[str], counts, task) -> list[int]:
    if minority_classes is None:
        return default_minority_classes(counts, task)
    if (
        not isinstance(minority_classes, Sequence)
        or isinstance(minority_classes, str)
        or not minority_classes
    ):
        raise ValueError("minority_classes: expected a non-empty list of class indices or names.")
    indices = []
    for item in minority_classes:
        if isinstance(item, str) and item in class_names:
            indices.append(class_names.index(item))
        elif isinstance(item, int | np.integer) and 0 <= int(item) < len(class_names):
            indices.append(int(item))
        else:
            raise ValueError(
                f"minority_classes: {item!r} is neither a class index in [0, {len(class_names)}) "
                f"nor one of the class names {class_names}."
            )
    return sorted(set(indices))


def _storage_for(storage, study_name):
    if storage is None and study_name is not None:
        return DEFAULT_STORAGE
    return storage


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
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    tracking_uri: str | None = None,
    experiment_name: str = "lossearch",
    seed: int | None = None,
    n_jobs: int = 1,
    fit_kwargs: dict | None = None,
    refit: bool = True,
    show_progress: bool = True,
    selection: str = "robust",
    confirm_seeds: int = 2,
    decision: bool = True,
    backend: str = "optuna",
    tuner: str = "hyperband",
) -> SearchResult:
    """Search loss families, their parameters and class weighting for ``build_model``.

    Every argument is checked before the first trial; bad input is a
    ``ValueError`` naming the argument.

    Args:
        build_model: ``build_model()`` or ``build_model(hp)`` returning a Keras model,
            compiled (optimizer and metrics kept, loss replaced) or not (Adam 1e-3).
            ``hp`` offers ``Float``, ``Int``, ``Choice``, ``Boolean``. A last layer with
            softmax/sigmoid activation means the model outputs probabilities.
        data: ``(x, y)`` (a stratified ``validation`` split is carved out),
            ``((x, y), (x_val, y_val))``, ``{"train": ..., "validation": ...}`` or a pair
            of ``tf.data.Dataset``.
        space: a bundled space name, a YAML path, a dict or a :class:`SearchSpace`.
        objective: a name from :data:`lossearch.metrics.OBJECTIVES` (default:
            ``balanced_accuracy`` multiclass, ``pr_auc`` binary, ``macro_pr_auc``
            multi-label), a callable ``f(y_true, y_prob)``, or ``(callable, direction)``.
        n_trials: finished trials the study should hold (a rerun resumes to this).
        cv: stratified k-fold per trial, scored on out-of-fold predictions; ``"auto"``
            uses 3 folds when a 20% hold-out would leave some class fewer than 5
            validation samples (the summary says so), else the hold-out.
        storage / study_name: an Optuna storage (URL or object; see
            :func:`lossearch.storages.open_storage`); a ``study_name`` alone stores in
            ``sqlite:///lossearch.db`` so a rerun resumes. Processes or machines that
            call ``optimize`` with the same storage and study share it: each takes trials
            until the study holds ``n_trials`` finished ones, their trials land under one
            MLflow parent run, and the last worker to finish closes it (selection,
            artifacts); the others return the best trial so far.
        tracking_uri / experiment_name: where MLflow runs go (MLflow's default URI).
        selection: ``"robust"`` confirms the leaders, the incumbent recipe and the CE
            baseline with ``confirm_seeds`` extra seeds and keeps the incumbent unless a
            challenger beats it clearly (see :mod:`lossearch.selection`); ``"best"`` takes
            the top trial as is.
        decision: tune a decision rule on each trial's validation predictions and score
            the trial under it (multiclass: post-hoc logit adjustment; binary and
            multi-label: a threshold; see :mod:`lossearch.decision`). The chosen rule is
            exported in ``result.best_config.decision`` and applied by ``result.model``.
        refit: retrain the chosen config on train + validation; see ``result.model``.
        backend: ``"optuna"`` (default) or ``"keras_tuner"``; the same space, recipes,
            runner, metrics, MLflow runs and result either way.
        tuner: with ``backend="keras_tuner"``: ``"hyperband"``, ``"bayesian"``,
            ``"random"`` or ``"grid"``.

    Example:
        >>> result = lossearch.optimize(build_model, (x, y), n_trials=20)  # doctest: +SKIP
        >>> print(result.summary())                                       # doctest: +SKIP
        >>> result.best_config.to_json("best_loss.json")                  # doctest: +SKIP
    """
    _check_arguments(
        n_trials=n_trials,
        timeout=timeout,
        epochs=epochs,
        batch_size=batch_size,
        n_jobs=n_jobs,
        fit_kwargs=fit_kwargs,
        storage=storage,
        study_name=study_name,
        experiment_name=experiment_name,
        selection=selection,
        confirm_seeds=confirm_seeds,
        seed=seed,
    )
    if not isinstance(decision, bool):
        raise ValueError(f"decision: expected True or False, got {decision!r}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}.")
    if backend == "keras_tuner":
        from lossearch.backends.keras_tuner import TUNERS

        if tuner not in TUNERS:
            raise ValueError(f"tuner: expected one of {list(TUNERS)}, got {tuner!r}.")
        if sampler is not None or pruner is not None or storage is not None:
            raise ValueError(
                "sampler, pruner and storage: Optuna settings; the Keras Tuner backend takes "
                "tuner= (and study_name= to resume a tuner project)."
            )
    build = model_builder(build_model)
    try:
        facts = probe_model(build)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"build_model: raised {type(exc).__name__}: {exc}") from exc
    prepared = prepare_data(
        data,
        output_shape=facts.output_shape,
        activation=facts.activation,
        validation=validation,
        cv=cv,
        class_names=class_names,
        seed=seed,
    )
    resolved_objective = resolve_objective(objective, prepared.task)
    minority = _minority(
        minority_classes, prepared.class_names, prepared.class_counts, prepared.task
    )
    search_space = SearchSpace.load(space, task=prepared.task)
    storage = _storage_for(storage, study_name)
    storage_name = (
        storage if storage is None or isinstance(storage, str) else type(storage).__name__
    )
    if backend == "optuna":
        storage = open_storage(storage)  # connects now: a bad URL fails before any trial
    tracker = Tracker(tracking_uri, experiment_name)  # fails fast when unreachable
    tracker.sync_hint = (
        f"lossearch sync-mlflow --storage {mask_credentials(storage_name)} --study <study name>"
    )

    runner = TrialRunner(
        build_model,
        prepared,
        resolved_objective,
        minority_classes=minority,
        facts=facts,
        epochs=epochs,
        batch_size=batch_size,
        fit_kwargs=fit_kwargs,
        decision=decision,
    )
    search = _make_search(
        backend,
        tuner,
        runner,
        search_space,
        tracker,
        resolved_objective,
        sampler,
        pruner,
        storage,
        study_name,
        seed,
        n_jobs,
        n_trials,
        epochs,
    )
    tracker.sync_hint = tracker.sync_hint.replace("<study name>", search.name)
    search.join(
        seed,
        None
        if sampler is not None
        else lambda s: default_sampler(s, max(10, len(search_space.recipes) + 2), parallel=True),
    )
    with search.exclusive():  # workers starting together share one parent run
        parent_id = _start_parent(
            tracker,
            search,
            search_space,
            resolved_objective,
            prepared,
            minority,
            settings={
                "n_trials": n_trials,
                "epochs": epochs,
                "batch_size": batch_size,
                "cv": prepared.cv,
                "scoring": prepared.scoring,
                "validation": validation if prepared.cv is None else None,
                "decision": decision,
                "seed": seed,
            },
            storage=storage_name,
            named=study_name is not None,
        )
    try:
        search.run(n_trials, timeout=timeout, n_jobs=n_jobs, show_progress=show_progress)
    except KeyboardInterrupt:
        with search.exclusive():
            if search.claim_finish():  # not while other workers still run trials
                tracker.end_search("KILLED")
        where = f" ({mask_credentials(storage_name)})" if storage else ""
        print(
            f"\nInterrupted. Completed trials are kept in {search.name!r}{where}; "
            + (
                "rerun with the same storage and study_name to resume."
                if storage or backend == "keras_tuner"
                else "pass storage= and study_name= to make searches resumable."
            ),
            file=sys.stderr,
        )
        raise

    with search.exclusive():
        closes_search = search.claim_finish()
    records = search.completed_records()
    if not records:
        if closes_search:
            tracker.end_search("FAILED")
        reasons = search.failure_reasons()
        raise RuntimeError(
            "lossearch: no trial completed" + (f"; first failure: {reasons[0]}" if reasons else ".")
        )
    if not closes_search:
        print(
            f"lossearch: other workers still run trials of {search.name!r}; the last one to "
            "finish selects the loss and closes the MLflow parent run. This worker returns the "
            "best trial so far.",
            file=sys.stderr,
        )
        selection = "best"
    picked = _choose(records, runner, resolved_objective, selection, confirm_seeds, seed)
    chosen = next(r for r in records if r.number == picked["trial"])
    baseline = baseline_record(records)
    notes = validation_warnings(runner.data, records, resolved_objective)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    choice = {**picked["choice"], "warnings": notes, "scoring": prepared.scoring}
    trained = _refit(runner, chosen, seed) if refit else None
    model = trained
    if trained is not None and picked["decision"] is not None:
        model = with_decision(trained, picked["decision"], from_logits=facts.from_logits)
    result = SearchResult(
        best_config=dataclasses.replace(chosen.config, decision=picked["decision"]),
        best_value=picked["value"],
        best_value_std=picked["std"],
        best_metrics=picked.get("metrics") or chosen.metrics,
        baseline_metrics=picked.get("baseline_metrics") or (baseline.metrics if baseline else None),
        baseline_value=picked["baseline_value"],
        objective=resolved_objective.name,
        direction=resolved_objective.direction,
        study=search.handle,
        search=search,
        mlflow_run_id=parent_id,
        best_trial_number=chosen.number,
        model=model,
        trained_model=trained,
        selection=choice,
        class_counts=prepared.class_counts,
        validation_counts=validation_support(runner.data),
    )
    if closes_search:
        search.remember_choice(_stored_choice(result))
        _finish_parent(tracker, result, search)
    return result


def _stored_choice(result: SearchResult) -> dict:
    """What the study keeps of the choice: enough for export, report and sync-mlflow."""
    decision = result.best_config.decision
    return {
        "trial": result.best_trial_number,
        "value": result.best_value,
        "reason": result.selection.get("reason", ""),
        "decision": None if decision is None else decision.to_dict(),
        "baseline_value": result.baseline_value,
        "baseline_runs": result.selection.get("baseline_runs", 1),
        "metrics": result.best_metrics,
        "baseline_metrics": result.baseline_metrics,
        "warnings": result.selection.get("warnings", []),
    }


def _make_search(
    backend,
    tuner,
    runner,
    space,
    tracker,
    objective,
    sampler,
    pruner,
    storage,
    study_name,
    seed,
    n_jobs,
    n_trials,
    epochs,
):
    if backend == "optuna":
        n_recipes = len(space.recipes)
        return OptunaSearch.create(
            runner,
            space,
            tracker,
            direction=objective.direction,
            # Other threads or processes may hold running trials: let TPE lie about them.
            sampler=sampler
            or default_sampler(seed, max(10, n_recipes + 2), parallel=n_jobs != 1 or bool(storage)),
            pruner=pruner or default_pruner(n_recipes, epochs),
            storage=storage,
            study_name=study_name,
            seed=seed,
        )
    from lossearch.backends.keras_tuner import KerasTunerSearch, default_directory
    from lossearch.keras_tuner import LossHyperModel

    hypermodel = LossHyperModel.for_runner(runner, space)
    return KerasTunerSearch.create(
        runner,
        space,
        tracker,
        hypermodel,
        tuner=tuner,
        direction=objective.direction,
        n_trials=n_trials,
        epochs=epochs,
        seed=seed,
        directory=default_directory(),
        project_name=study_name or f"search-{time.strftime('%Y%m%d-%H%M%S')}",
        overwrite=study_name is None,
    )


def _start_parent(
    tracker,
    search,
    space,
    objective,
    prepared,
    minority,
    *,
    settings: dict,
    storage: str | None,
    named: bool,
) -> str:
    """The search's MLflow parent run: the one saved in the study, else a new one.

    ``settings`` are the search's own arguments, logged as params beside the data's.
    """
    existing = search.saved_parent_run()
    if existing:
        try:
            if tracker.client.get_run(existing).info.status != "RUNNING":
                tracker.client.update_run(existing, status="RUNNING")
            return tracker.resume_search(existing)
        except Exception:  # the run was deleted or lives in another store
            pass
    names = prepared.class_names
    parent = tracker.start_search(
        run_name=search.name if named else f"{space.name} {time.strftime('%Y-%m-%d %H:%M:%S')}",
        params={
            "space": space.name,
            "objective": objective.name,
            "direction": objective.direction,
            **settings,
            "task": prepared.task,
            "class_counts": dict(zip(names, prepared.class_counts, strict=True)),
            "minority_classes": [names[i] for i in minority],
            **search.describe(),
        },
        tags={
            "study_name": search.name,
            "storage": storage or "in-memory",
            "lossearch.space": space.source,
            "lossearch.keras_backend": keras.backend.backend(),
        },
    )
    search.save_parent_run(parent)
    split = prepared.splits[0]
    tracker.log_dataset(split.x_train, split.y_train, prepared.class_counts, names)
    return parent


def _choose(records, runner, objective, selection, confirm_seeds, seed) -> dict:
    """The chosen trial, its confirmed value and decision, and the like-for-like baseline."""
    maximize = objective.direction == "maximize"
    if selection == "best" or confirm_seeds == 0 or len(records) == 1:
        best = max(records, key=lambda r: r.value if maximize else -r.value)
        baseline = baseline_record(records)
        return {
            "trial": best.number,
            "value": best.value,
            "std": 0.0,
            "decision": best.decision,
            "baseline_value": baseline.value if baseline else None,
            "choice": {"runs": 1, "recipe": best.recipe, "reason": "the top trial by search score"},
        }
    picked = select(records, runner, objective, confirm_seeds=confirm_seeds, seed=seed)
    chosen, baseline = picked.chosen, picked.baseline
    y_true = runner.data.validation_targets
    return {
        "metrics": chosen.pooled_metrics(y_true, runner.context),
        "baseline_metrics": baseline.pooled_metrics(y_true, runner.context) if baseline else None,
        "trial": chosen.trial_number,
        "value": chosen.mean,
        "std": math.sqrt(chosen.seed_var),
        "decision": chosen.decision,
        # confirmed with the same seeds and epochs as the pick
        "baseline_value": baseline.mean if baseline else None,
        "choice": {
            "runs": len(chosen.values),
            "recipe": chosen.recipe,
            "reason": picked.reason,
            "gain_over_incumbent": picked.gain,
            "gain_se": picked.gain_se,
            "leader_trial": picked.leader.trial_number,
            "baseline_runs": len(baseline.values) if baseline else 0,
            "table": picked.table(),
        },
    }


def _refit(runner: TrialRunner, chosen: TrialRecord, seed):
    """The chosen config retrained on all labelled data (train + validation)."""
    keras.backend.clear_session()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = runner.build(FixedHyperParameters(chosen.hp_values))
    runner.compile(model, chosen.config)
    x, y = runner.data.train_val
    callbacks = [keras.callbacks.TerminateOnNaN(), *callbacks_for(chosen.config)]
    fit_kwargs = {k: v for k, v in runner.fit_kwargs.items() if k != "callbacks"}
    if y is None:  # a tf.data pipeline brings its own shuffling
        model.fit(
            x, epochs=runner.epochs, shuffle=False, verbose=0, callbacks=callbacks, **fit_kwargs
        )
    else:
        model.fit(
            x,
            y,
            epochs=runner.epochs,
            batch_size=runner.batch_size,
            verbose=0,
            callbacks=callbacks,
            **fit_kwargs,
        )
    return model


def _trials_csv(search) -> str:
    buffer = io.StringIO()
    search.trials_dataframe().to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()


def _finish_parent(tracker: Tracker, result: SearchResult, search):
    content = ReportContent.from_result(result)
    figures = search_figures(content)
    try:
        tracker.log_artifacts(
            {
                "best_loss.json": result.best_config.to_dict(),
                "trials.csv": _trials_csv(search),
                "selection.json": dict(result.selection),
                "summary.txt": result.summary(),
                "report.html": render_html(content, figures),
                **figures,
            }
        )
    finally:
        plots.close(*figures.values())
    metrics = {
        "best_value": result.best_value,
        "best_value_std": result.best_value_std,
        "best_trial": result.best_trial_number,
    }
    if result.baseline_value is not None:
        metrics["baseline_value"] = result.baseline_value
    tracker.log_search_metrics(metrics)
    tracker.set_parent_tag("best_loss", result.best_config.describe())
    tracker.end_search("FINISHED")


def load_best_config(storage: str, study_name: str) -> LossConfig:
    """The chosen (else the best) config of a stored study, without the data.

    Example:
        >>> config = load_best_config("sqlite:///lossearch.db", "digits")  # doctest: +SKIP
    """
    study = load_study(storage, study_name)
    choice = study.user_attrs.get(CHOICE_ATTR)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        raise ValueError(f"study: {study_name!r} has no completed trial yet.")
    if choice is not None:
        trial = next((t for t in completed if t.number == choice["trial"]), None)
    else:
        trial = study.best_trial
    if trial is None or "config" not in trial.user_attrs:
        raise ValueError(f"study: {study_name!r} was not written by lossearch (no loss config).")
    config = LossConfig.from_dict(trial.user_attrs["config"], source=f"study {study_name}")
    decision = (choice or {}).get("decision") or trial.user_attrs.get("decision")
    return dataclasses.replace(config, decision=decision) if decision else config
