"""The Keras Tuner driver: the same space, recipes, runner and tracking as Optuna.

* Loss parameters are drawn through Keras Tuner's ``hp`` by
  :class:`lossearch.integrations.keras_tuner.KerasTunerSource`, as in :class:`LossHyperModel`.
* :data:`ORACLES` hand out the space's recipes before their own samples (grid
  search enumerates them anyway).
* :class:`KerasTunerDriver` runs the oracle's trials through the shared
  per-trial routine of :class:`lossearch.backends.base.BaseDriver`, and keeps what the
  search stores in the project's :class:`~lossearch.study.state.KerasTunerState`, which
  ``lossearch export``, ``report`` and ``sync-mlflow`` read (``keras_tuner:///FOLDER``).
"""

from __future__ import annotations

import os
import time

import keras_tuner as kt
from tqdm.auto import tqdm

from lossearch._compat import RecipesFirst
from lossearch._validation import Options, check
from lossearch.arguments import TUNERS
from lossearch.backends.base import BaseDriver, TrialFailed, TrialHooks
from lossearch.integrations.keras_tuner import KerasTunerSource, LossHyperModel, encode_choice
from lossearch.runner import TrialRunner
from lossearch.search_space import RecipeSource, SearchSpace
from lossearch.selection.roles import recipes_in_running_order
from lossearch.settings import SearchSettings, plain_name, readable_study_name
from lossearch.stopping import SearchProgress, default_stopper
from lossearch.study import state as keys
from lossearch.study.state import KerasTunerState, StoredTrial
from lossearch.tracking.runs import Tracker


class _EncodedRecipeSource(RecipeSource):
    """Recipe values as Keras Tuner stores them (encoded categorical choices)."""

    def categorical(self, name, choices, *, default):
        value = super().categorical(name, choices, default=default)
        self.asked[name] = encode_choice(choices, value)
        return value


def recipe_values(space: SearchSpace, runner: TrialRunner) -> list[tuple[str, dict]]:
    """``(recipe name, hp values)`` for every recipe of ``space``, in running order."""
    out = []
    for recipe in recipes_in_running_order(space.recipes, runner.objective, runner.data.task):
        source = _EncodedRecipeSource(recipe)
        space.draw(source)
        out.append((recipe.name, source.asked))
    return out


class RecipesFirstHyperband(RecipesFirst, kt.oracles.HyperbandOracle):
    pass


class RecipesFirstBayesian(RecipesFirst, kt.oracles.BayesianOptimizationOracle):
    pass


class RecipesFirstRandom(RecipesFirst, kt.oracles.RandomSearchOracle):
    pass


ORACLES = {
    "hyperband": RecipesFirstHyperband,
    "bayesian": RecipesFirstBayesian,
    "random": RecipesFirstRandom,
    "grid": kt.oracles.GridSearchOracle,  # enumerates every value, recipes included
}


def make_oracle(tuner: str, recipes: list[dict], *, objective, n_trials, epochs, seed):
    """A Keras Tuner oracle that hands out ``recipes`` first (grid search enumerates instead)."""
    check("tuner", tuner, [Options(TUNERS)])
    budget = (
        {"max_epochs": epochs, "factor": 3} if tuner == "hyperband" else {"max_trials": n_trials}
    )
    oracle = ORACLES[tuner](
        objective=objective, seed=seed, max_consecutive_failed_trials=max(3, n_trials), **budget
    )
    if isinstance(oracle, RecipesFirst):
        oracle.pending_recipes = [dict(r) for r in recipes]
    return oracle


class _OutOfTime(Exception):
    """``timeout`` has passed, or the early stop has ended the search: no further trial
    starts (Optuna's meaning of both)."""


class _LossTuner(kt.engine.base_tuner.BaseTuner):
    """A Keras Tuner tuner whose trials the driver runs."""

    def __init__(self, driver: KerasTunerDriver, recipes: list[tuple[str, dict]], **kwargs):
        self.driver, self.recipes = driver, recipes
        self.deadline: float | None = None  # time.monotonic() after which no trial starts
        self.started = 0
        super().__init__(**kwargs)

    def pre_create_trial(self):
        # As Optuna's timeout: checked between trials, so the first one always runs.
        if self.started and self.deadline is not None and time.monotonic() >= self.deadline:
            raise _OutOfTime
        if self.driver.stop_reason() is not None:  # as the Optuna driver's, between trials
            raise _OutOfTime
        self.started += 1
        super().pre_create_trial()

    def run_trial(self, trial, *args, **kwargs):
        return self.driver.run_kt_trial(trial, self.recipes)


class KerasTunerDriver(BaseDriver):
    """Runs a Keras Tuner oracle's trials through the shared per-trial routine.

    Keras Tuner's own distributed mode (chief and workers) coordinates many workers, so
    the multi-worker hooks keep their single-worker defaults.
    """

    def __init__(self, runner: TrialRunner, space: SearchSpace, tracker: Tracker, settings):
        super().__init__(runner, space, tracker, settings.seed)
        self.tuner_name = settings.tuner
        self.tuner: _LossTuner | None = None
        self.state: KerasTunerState | None = None  # what the search keeps, read and written
        self.stopper = default_stopper(settings.early_stop)
        self.progress = None  # the progress bar while a search runs

    @classmethod
    def create(
        cls, runner: TrialRunner, space: SearchSpace, tracker: Tracker, settings: SearchSettings
    ) -> KerasTunerDriver:
        driver = cls(runner, space, tracker, settings)
        direction = runner.objective.direction
        recipes = recipe_values(space, runner)
        oracle = make_oracle(
            settings.tuner,
            [values for _, values in recipes],
            objective=kt.Objective("objective", "max" if direction == "maximize" else "min"),
            n_trials=settings.n_trials,
            epochs=runner.epochs,
            seed=settings.seed,
        )
        driver.tuner = _LossTuner(
            driver,
            recipes,
            oracle=oracle,
            hypermodel=LossHyperModel.for_runner(runner, space),
            directory=default_directory(),
            project_name=_project_name(settings.study_name or readable_study_name(space.name)),
            overwrite=settings.study_name is None,
        )
        driver.state = KerasTunerState(
            driver.tuner.project_dir, driver.tuner.project_name, direction
        )
        driver.state.set(keys.OBJECTIVE, runner.objective.name)
        return driver

    def run_kt_trial(self, trial, recipes: list[tuple[str, dict]]) -> float:
        hp = trial.hyperparameters
        number = int(trial.trial_id)
        config = self.space.sample(KerasTunerSource(hp), **self.runner.config_facts())
        loss_values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
        recipe = _recipe_of(loss_values, recipes)
        hooks = _EpochsKept()
        drawn = {k: v for k, v in hp.values.items() if v is not None and v != "null"}
        kept = StoredTrial(number, "FAIL", params=drawn)  # "null": a choice not drawn
        kept.user_attrs.update({keys.CONFIG: config.to_dict(), keys.RECIPE: recipe})
        try:
            record = self.run_trial(
                number,
                config,
                hp,
                recipe=recipe,
                tags={"tuner_trial_id": trial.trial_id},
                hooks=hooks,
                epochs=int(hp.values.get("tuner/epochs", self.runner.epochs)),
            )
        except TrialFailed as exc:
            kept.user_attrs[keys.FAIL_REASON] = str(exc)[:2000]
            raise kt.errors.FailedTrialError(str(exc)) from exc
        except KeyboardInterrupt:
            kept.user_attrs[keys.INTERRUPTED] = True
            raise
        else:
            kept.state, kept.value = "COMPLETE", record.value
            kept.user_attrs.update(keys.completed_attrs(record))
        finally:
            kept.intermediate_values = hooks.values
            kept.user_attrs[keys.EPOCH_LOSS] = hooks.losses
            self.state.save_trial(kept)
            if self.progress is not None:
                self.progress.update(1)
        return record.value

    # -- BaseDriver ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.tuner.project_name

    @property
    def handle(self):
        """The Keras Tuner tuner."""
        return self.tuner

    def describe(self) -> dict:
        return {"backend": "keras_tuner", "tuner": self.tuner_name}

    def search_progress(self) -> SearchProgress:
        """What a stopper sees: the completed records and the sampled trials finished."""
        sampled = [t for t in self.state.trials(keys.FINISHED) if not t.user_attrs.get(keys.RECIPE)]
        training = self.runner.epochs * max(1, len(self.runner.data.splits))
        return SearchProgress(
            records=self.completed_records(),
            sampled_finished=len(sampled),
            sampled_trainings=sum(len(t.intermediate_values) for t in sampled) / training,
            recipes_pending=bool(getattr(self.tuner.oracle, "pending_recipes", None)),
            runner=self.runner,
        )

    def run(self, n_trials, *, timeout, n_jobs, show_progress):
        # n_jobs is 1: the settings refuse others (lossearch.capabilities)
        self.forget_an_old_stop()
        self.tuner.deadline = None if timeout is None else time.monotonic() + timeout
        # Keras Tuner's own per-trial tables (verbose=1) repeat what MLflow shows; one bar
        # like the Optuna driver's instead (Hyperband decides its own number of trials).
        total = None if self.tuner_name == "hyperband" else n_trials
        with tqdm(total=total, desc=self.name, unit="trial", disable=not show_progress) as bar:
            self.progress = bar
            try:
                self.tuner.search(verbose=0)
            except _OutOfTime:
                self.tuner.on_search_end()
            finally:
                self.progress = None


class _EpochsKept(TrialHooks):
    """The objective and the training loss after each epoch, kept with the trial for
    ``sync-mlflow`` (as the Optuna driver keeps them in the study)."""

    def __init__(self):
        self.values: dict[int, float] = {}
        self.losses: list[float | None] = []

    def epoch(self, step: int, value: float, logs: dict[str, float]) -> bool:
        self.values[step] = value
        self.losses.append(logs.get("loss"))
        return False


def _recipe_of(values: dict, recipes: list[tuple[str, dict]]) -> str | None:
    """The recipe whose values this trial holds (Hyperband may promote it to more epochs)."""
    for name, recipe in recipes:
        if all(values.get(k) == v for k, v in recipe.items()):
            return name
    return None


def _project_name(name: str) -> str:
    """The tuner's project folder name, which must stay one folder under
    :func:`default_directory` whatever named it (the study name, the space's name)."""
    if not plain_name(name):
        raise ValueError(
            f"study_name: {name!r} would name a Keras Tuner project folder outside "
            f"{default_directory()!r}; use a plain name (no '/', '\\', '..' or leading '.')."
        )
    return name


def default_directory() -> str:
    return os.path.join(os.getcwd(), ".lossearch", "tuner")
