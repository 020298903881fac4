"""The Keras Tuner driver: the same space, recipes, runner and tracking as Optuna.

* :class:`KerasTunerSource` draws a space through Keras Tuner's ``hp``, with
  family / scheme parameters under ``hp.conditional_scope``.
* :func:`recipes_first` makes any Keras Tuner oracle hand out the space's
  recipes before its own samples (grid search enumerates them anyway).
* :class:`KerasTunerSearch` runs the oracle's trials through the shared
  :class:`lossearch.runner.TrialRunner` and records them like the Optuna driver.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import keras_tuner as kt

from lossearch.runner import TrialRecord, TrialRunner, run_tracked
from lossearch.search_space import RecipeSource, SearchSpace
from lossearch.tracking import Tracker, mask_credentials

TUNERS = ("hyperband", "bayesian", "random", "grid")
_NATIVE = (str, int, float, bool)


def _needs_encoding(choices: Sequence[Any]) -> bool:
    """Keras Tuner's ``Choice`` takes one plain type; others travel as JSON strings."""
    types = {type(c) for c in choices}
    return len(types) != 1 or next(iter(types)) not in _NATIVE


def encode_choice(choices: Sequence[Any], value: Any) -> Any:
    return json.dumps(value) if _needs_encoding(choices) else value


def decode_choice(choices: Sequence[Any], raw: Any) -> Any:
    return json.loads(raw) if _needs_encoding(choices) else raw


class KerasTunerSource:
    """:class:`lossearch.search_space.ParamSource` over Keras Tuner's ``hp``."""

    def __init__(self, hp: kt.HyperParameters):
        self.hp = hp

    def float(self, name, low, high, *, log, step, default):
        return self.hp.Float(name, low, high, step=step, sampling="log" if log else "linear")

    def int(self, name, low, high, *, log, step, default):
        return self.hp.Int(name, low, high, step=step, sampling="log" if log else "linear")

    def categorical(self, name, choices, *, default):
        values = [encode_choice(choices, c) for c in choices]
        return decode_choice(choices, self.hp.Choice(name, values))

    def scope(self, parent, values):
        return self.hp.conditional_scope(parent, list(values))


class _EncodedRecipeSource(RecipeSource):
    """Recipe values as Keras Tuner stores them (encoded categorical choices)."""

    def categorical(self, name, choices, *, default):
        value = super().categorical(name, choices, default=default)
        self.asked[name] = encode_choice(choices, value)
        return value


def recipe_values(space: SearchSpace) -> list[tuple[str, dict]]:
    """``(recipe name, hp values)`` for every recipe of ``space``."""
    out = []
    for recipe in space.recipes:
        source = _EncodedRecipeSource(recipe)
        space.draw(source)
        out.append((recipe.name, source.asked))
    return out


def recipes_first(oracle_class: type[kt.Oracle], recipes: list[dict]) -> type[kt.Oracle]:
    """``oracle_class`` whose first random draws are the given recipe values."""

    class RecipesFirst(oracle_class):
        def _random_values(self):
            while self._lossearch_recipes:
                values = dict(self._lossearch_recipes.pop(0))
                if not self._duplicate(values):
                    return values
            return super()._random_values()

    RecipesFirst.__name__ = f"RecipesFirst{oracle_class.__name__}"
    RecipesFirst._lossearch_recipes = [dict(r) for r in recipes]
    return RecipesFirst


ORACLES = {
    "hyperband": kt.oracles.HyperbandOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
    "random": kt.oracles.RandomSearchOracle,
    "grid": kt.oracles.GridSearchOracle,
}


def make_oracle(tuner: str, recipes: list[dict], *, objective, n_trials, epochs, seed):
    """A Keras Tuner oracle that hands out ``recipes`` first (grid search enumerates instead)."""
    if tuner not in TUNERS:
        raise ValueError(f"tuner: expected one of {list(TUNERS)}, got {tuner!r}.")
    oracle_class = recipes_first(ORACLES[tuner], recipes if tuner != "grid" else [])
    if tuner == "hyperband":
        return oracle_class(
            objective=objective,
            max_epochs=epochs,
            factor=3,
            seed=seed,
            max_consecutive_failed_trials=max(3, n_trials),
        )
    return oracle_class(
        objective=objective,
        max_trials=n_trials,
        seed=seed,
        max_consecutive_failed_trials=max(3, n_trials),
    )


@dataclass
class KerasTunerSearch:
    """Runs a Keras Tuner oracle's trials through the shared trial runner."""

    runner: TrialRunner
    space: SearchSpace
    tracker: Tracker
    tuner: Any = None
    seed: int | None = None
    records: dict[int, TrialRecord] = field(default_factory=dict)
    states: dict[int, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        runner,
        space,
        tracker,
        hypermodel,
        *,
        tuner,
        direction,
        n_trials,
        epochs,
        seed,
        directory,
        project_name,
        overwrite,
    ):
        search = cls(runner, space, tracker, seed=seed)
        objective = kt.Objective("objective", "max" if direction == "maximize" else "min")
        recipes = recipe_values(space)
        oracle = make_oracle(
            tuner,
            [values for _, values in recipes],
            objective=objective,
            n_trials=n_trials,
            epochs=epochs,
            seed=seed,
        )

        class LossTuner(kt.engine.base_tuner.BaseTuner):
            def run_trial(self, trial, *args, **kwargs):
                return search.run_trial(trial, recipes)

        search.tuner = LossTuner(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
        )
        return search

    def optimize(self, show_progress: bool = True):
        self.tuner.search(verbose=1 if show_progress else 0)

    def run_trial(self, trial, recipes: list[tuple[str, dict]]) -> float:
        hp = trial.hyperparameters
        number = int(trial.trial_id)
        config = self.space.sample(KerasTunerSource(hp), **self.runner.config_facts())
        loss_values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
        recipe = _recipe_of(loss_values, recipes)
        try:
            record = run_tracked(
                self.runner,
                self.tracker,
                number=number,
                config=config,
                hp=hp,
                recipe=recipe,
                tags={"tuner_trial_id": trial.trial_id},
                seed=None if self.seed is None else self.seed + number,
                reporter_for=lambda run: _Reporter(self.tracker, run),
                epochs=int(hp.values.get("tuner/epochs", self.runner.epochs)),
            )
        except Exception as exc:
            self.states[number] = "FAIL"
            reason = f"{type(exc).__name__}: {exc}"
            raise kt.errors.FailedTrialError(mask_credentials(reason)) from exc
        self.states[number] = "COMPLETE"
        self.records[number] = record
        return record.value

    def trial_values(self) -> list[tuple[int, str, float | None]]:
        """``(number, state, value)`` of every trial this tuner holds."""
        out = []
        for trial in self.tuner.oracle.trials.values():
            number = int(trial.trial_id)
            value = trial.score if trial.score is not None and math.isfinite(trial.score) else None
            state = self.states.get(number, "COMPLETE" if value is not None else "FAIL")
            out.append((number, state, value))
        return sorted(out)

    # -- what optimize() needs from any driver -------------------------------------------

    @property
    def name(self) -> str:
        return self.tuner.project_name

    @property
    def handle(self):
        """What ``SearchResult.study`` exposes: the Keras Tuner tuner."""
        return self.tuner

    def describe(self) -> dict:
        return {"backend": "keras_tuner", "tuner": type(self.tuner.oracle).__mro__[1].__name__}

    def _state_file(self) -> str:
        return os.path.join(self.tuner.project_dir, "lossearch.json")

    def _state(self) -> dict:
        try:
            with open(self._state_file(), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def _save_state(self, **values):
        state = {**self._state(), **values}
        with open(self._state_file(), "w", encoding="utf-8") as handle:
            json.dump(state, handle)

    def saved_parent_run(self) -> str | None:
        return self._state().get("mlflow_parent_run_id")

    def save_parent_run(self, run_id: str):
        self._save_state(mlflow_parent_run_id=run_id)

    def remember_choice(self, choice: dict):
        self._save_state(choice=choice)

    def join(self, seed, make_sampler):
        """Keras Tuner's own distributed mode (chief and workers) coordinates its workers."""

    def exclusive(self):
        return nullcontext()

    def claim_finish(self) -> bool:
        return True

    def run(self, n_trials, *, timeout, n_jobs, show_progress):
        if n_jobs != 1:
            raise ValueError(
                "n_jobs: the Keras Tuner backend runs one trial at a time per "
                "process; use its distributed mode for parallel workers."
            )
        self.optimize(show_progress)

    def completed_records(self) -> list[TrialRecord]:
        return [
            self.records[n]
            for n, state, _ in self.trial_values()
            if state == "COMPLETE" and n in self.records
        ]

    def trial_states(self):
        return self.trial_values()

    def failure_reasons(self) -> list[str]:
        return [
            t.message.strip().splitlines()[-1]
            for t in self.tuner.oracle.trials.values()
            if getattr(t, "message", None)
        ]

    def trials_dataframe(self):
        import pandas as pd

        rows = []
        for trial in self.tuner.oracle.trials.values():
            rows.append(
                {
                    "number": int(trial.trial_id),
                    "state": str(trial.status),
                    "value": trial.score,
                    **{f"params_{k}": v for k, v in trial.hyperparameters.values.items()},
                }
            )
        return pd.DataFrame(rows).sort_values("number").reset_index(drop=True)

    def importances(self) -> dict[str, float]:
        return {}  # Keras Tuner computes none


class _Reporter:
    """Keras Tuner has no per-epoch pruning; epochs still reach MLflow."""

    def __init__(self, tracker: Tracker, run):
        self.tracker, self.run = tracker, run

    def report(self, step, value, logs):
        self.tracker.log_epoch(self.run, step, logs)
        return False


def _recipe_of(values: dict, recipes: list[tuple[str, dict]]) -> str | None:
    """The recipe whose values this trial holds (Hyperband may promote it to more epochs)."""
    for name, recipe in recipes:
        if all(values.get(k) == v for k, v in recipe.items()):
            return name
    return None


def default_directory() -> str:
    return os.path.join(os.getcwd(), "lossearch_tuner")
