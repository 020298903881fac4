"""The loss search inside your own Optuna study, in Optuna's idiom.

Example:
    >>> import optuna, lossearch                                          # doctest: +SKIP
    >>> def objective(trial):
    ...     config = lossearch.suggest_loss(trial, space="long_tail", class_counts=counts)
    ...     model = build(trial)
    ...     model.compile("adam", loss=config.build(),
    ...                   metrics=[lossearch.metrics.BalancedAccuracy(10)])
    ...     model.fit(x, y, validation_data=(xv, yv), epochs=20,
    ...               callbacks=lossearch.callbacks_for(config)
    ...               + [lossearch.optuna.PruningCallback(trial, "val_balanced_accuracy")])
    ...     return model.evaluate(xv, yv, return_dict=True, verbose=0)["balanced_accuracy"]
    >>> study = optuna.create_study(direction="maximize")
    >>> lossearch.optuna.enqueue_recipes(study, space="long_tail", class_counts=counts)
    >>> study.optimize(objective, n_trials=30,
    ...                callbacks=[lossearch.optuna.MLflowCallback(tracking_uri=uri)])
    >>> lossearch.optuna.best_config(study).to_json("best_loss.json")

The parameters are the ones :func:`lossearch.optimize` draws (``family``, ``weights``,
``focal.gamma``, ...), and each trial keeps its loss config as the user attribute
``optimize`` writes, so ``lossearch export``, ``lossearch report`` and
optuna-dashboard read such a study the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import optuna

from lossearch._validation import NON_EMPTY_STR, Interval, Options, validate_params
from lossearch.backends.optuna import OptunaSource
from lossearch.config import LossConfig
from lossearch.models import TASKS, loss_facts
from lossearch.search_space import SearchSpace
from lossearch.study import state as keys
from lossearch.study.stored import StoredStudy
from lossearch.tracking.runs import Tracker
from lossearch.weights import check_counts

__all__ = ["MLflowCallback", "PruningCallback", "best_config", "enqueue_recipes", "suggest_loss"]

_FACTS = {"task": [None, Options(TASKS)], "n_samples": [None, Interval(int, 1, None)]}


def _space_and_facts(space, class_counts, task, class_names, from_logits, n_samples):
    """The space for the task, and what every config is told about the data."""
    if class_counts is None:
        raise ValueError("class_counts: expected the training count of each class.")
    if task is None:  # a space made for one task says which; otherwise multiclass
        tasks = SearchSpace.load(space).tasks
        task = tasks[0] if len(tasks) == 1 else "multiclass"
    if task == "multilabel" and n_samples is None:
        raise ValueError(
            "n_samples: a multi-label task needs the number of training samples "
            "(class_counts are positives per label)."
        )
    counts = check_counts(class_counts, class_names).tolist()
    facts = loss_facts(
        class_counts=counts,
        class_names=class_names,
        task=task,
        from_logits=from_logits,
        n_samples=n_samples,
    )
    return SearchSpace.load(space, task=task), facts


@validate_params(_FACTS)
def suggest_loss(
    trial: optuna.Trial,
    space="default",
    *,
    class_counts: Sequence[int],
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    from_logits: bool = True,
    n_samples: int | None = None,
) -> LossConfig:
    """Draw a loss config from ``space`` with ``trial`` (conditional parameters).

    Args:
        trial: the Optuna trial of your objective.
        space: a bundled name, a YAML path, a dict or a :class:`SearchSpace`.
        class_counts: training samples per class (binary: ``[n_neg, n_pos]``;
            multi-label: positives per label, with ``n_samples``).
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``; by default the
            space's own task when it has one, else multiclass.
        from_logits: whether your model outputs logits (no softmax / sigmoid).

    Example:
        >>> config = suggest_loss(trial, "long_tail", class_counts=[500, 50, 5])  # doctest: +SKIP
        >>> model.compile("adam", loss=config.build())                          # doctest: +SKIP
    """
    search_space, facts = _space_and_facts(
        space, class_counts, task, class_names, from_logits, n_samples
    )
    config = search_space.sample(OptunaSource(trial), **facts)
    keys.set_trial_attrs(trial, {keys.CONFIG: config.to_dict()})  # export and report read it
    return config


@validate_params(_FACTS)
def enqueue_recipes(
    study: optuna.Study,
    space="default",
    *,
    class_counts: Sequence[int],
    task: str | None = None,
    class_names: Sequence[str] | None = None,
    n_samples: int | None = None,
) -> list[str]:
    """Queue the space's recipes (the CE baseline, logit adjustment, ...) as the study's
    next trials, each once: recipes already in the study are not queued again.

    Returns:
        The names of the recipes queued.
    """
    search_space, _ = _space_and_facts(space, class_counts, task, class_names, True, n_samples)
    present = {t.user_attrs.get(keys.RECIPE) for t in study.get_trials(deepcopy=False)}
    queued = []
    for recipe in search_space.recipes:
        if recipe.name not in present:
            values = search_space.recipe_values(recipe)
            study.enqueue_trial(values, user_attrs={keys.RECIPE: recipe.name})
            queued.append(recipe.name)
    return queued


class PruningCallback(keras.callbacks.Callback):
    """Reports ``monitor`` to the trial after each epoch and prunes it when Optuna says so.

    A recipe trial (queued by :func:`enqueue_recipes`) is reported but never pruned, as in
    ``lossearch.optimize``: the searched configs are judged against the recipes, so those
    must train to the end whatever the pruner.

    Args:
        trial: the Optuna trial.
        monitor: a key of the epoch logs, e.g. ``"val_balanced_accuracy"``.
    """

    def __init__(self, trial: optuna.Trial, monitor: str):
        super().__init__()
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"monitor: {self.monitor!r} is not in the epoch logs {sorted(logs)}; "
                "compile the model with that metric (and pass validation_data to fit)."
            )
        self.trial.report(float(logs[self.monitor]), step=epoch)
        recipe = self.trial.user_attrs.get(keys.RECIPE)
        if not recipe and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")


class MLflowCallback:
    """An Optuna study callback: one MLflow child run per finished trial, under one parent
    run per study, with the same params (``loss.family``, ``loss.gamma``, ...), tags and
    per-epoch values as :func:`lossearch.optimize` logs.

    Example:
        >>> study.optimize(objective, n_trials=30,  # doctest: +SKIP
        ...                callbacks=[MLflowCallback(tracking_uri="sqlite:///mlflow.db")])
    """

    @validate_params({"experiment_name": [NON_EMPTY_STR], "metric_name": [NON_EMPTY_STR]})
    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str = "lossearch",
        metric_name: str = "objective",
    ):
        self.tracker = Tracker(tracking_uri, experiment_name)  # fails fast when unreachable
        self.metric_name = metric_name

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from lossearch.tracking.sync import log_trial, open_parent

        if keys.CONFIG not in trial.user_attrs:  # the objective failed before suggest_loss
            return
        open_parent(self.tracker, StoredStudy.of_study(study))
        log_trial(
            self.tracker,
            keys.stored_trial(trial),
            self.metric_name,
            tags={"study": study.study_name},
        )
        self.tracker.end_search("FINISHED")  # reopened by the next trial


def best_config(study: optuna.Study) -> LossConfig:
    """The loss config of the study's chosen trial (a study ``optimize`` closed) or of
    its best completed trial."""
    return StoredStudy.of_study(study).best_config()
