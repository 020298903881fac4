"""``SearchResult``: what ``optimize`` returns."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from lossearch._files import refuse_inputs
from lossearch.config import LossConfig
from lossearch.report import write_report
from lossearch.selection import Selection
from lossearch.study.stored import StoredStudy
from lossearch.summary import SearchSummary


@dataclass
class SearchResult:
    """The chosen loss, how it compares with the CE baseline, and the study behind it.

    Every fact about the pick is its :class:`~lossearch.selection.Selection`'s
    (``result.selection``: the chosen, baseline and incumbent trials, the confirmation
    table, the reason and any warnings; ``selection.to_dict()`` is what the study and
    MLflow's ``selection.json`` keep); the attributes below read it.

    Attributes:
        best_config: the chosen :class:`LossConfig` with its tuned decision rule, told the
            class counts of all labelled data (what ``model`` was refit on; each trial was
            told its training split's, ``class_counts``).
        best_value: its objective, the mean over its confirmation runs.
        best_value_std: seed-to-seed standard deviation of that objective.
        best_metrics: per-class and summary metrics, pooled over its confirmation runs
            (``selection="best"``: of its search trial).
        baseline_metrics / baseline_value: the same for the plain cross-entropy baseline,
            measured with the same runs as the pick (or None).
        best_hp: your own hyperparameters (``build_model(hp)``) of the chosen trial.
        objective / direction: what was optimised.
        study: the Optuna study (Keras Tuner backend: the tuner);
            ``mlflow_run_id``: the parent MLflow run, in ``mlflow_experiment_id``.
        model: the best config retrained on train + validation (``refit=True``), with its
            decision rule as the last layer: ``model.predict`` gives adjusted probabilities
            whose arg-max (or ``>= 0.5``) is the tuned decision; save it as ``.keras``.
        trained_model: the same model without the decision layer, compiled with the
            user's optimizer and metrics and the chosen loss (to train on or evaluate).
        validation_counts: validation samples per class (multi-label: positives).
        seconds: this process's wall time per phase: ``search`` (its trials),
            ``confirmation`` (the confirmation runs and the choice) and ``refit``; logged
            to the MLflow parent run as ``seconds_search`` and so on.
        test_metrics: with ``test_data``, ``{"pick": metrics, "baseline": metrics}``: the
            refit pick and plain CE refit the same way, each with its own tuned decision rule,
            scored once on it (per class and summary); ``None`` without it.
        model_uri: ``model`` as logged to MLflow (``models:/m-...``; load it with
            ``mlflow.keras.load_model`` after ``import lossearch``), or ``None``.
        closed: False when other workers still ran trials: then the pick is the top trial
            so far, and the last worker to finish makes the final one.

    Example:
        >>> result = lossearch.optimize(build_model, (x, y))  # doctest: +SKIP
        >>> print(result.summary())                            # doctest: +SKIP
        >>> result.export("best_loss.json")                    # doctest: +SKIP
    """

    selection: Selection
    objective: str
    direction: str
    study: Any
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None = None
    model: Any = None
    trained_model: Any = None
    class_counts: list[int] = field(default_factory=list)
    validation_counts: list[int] = field(default_factory=list)
    search: Any = None  # the backend driver, for trial listings
    model_uri: str | None = None  # the refit model in MLflow (models:/...), when logged
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    closed: bool = True
    inputs: dict[str, str | None] = field(default_factory=dict)  # files outputs must spare
    test_metrics: dict | None = None  # {"pick": ..., "baseline": ...} on test_data

    @property
    def best_config(self) -> LossConfig:
        return self.selection.config

    @property
    def best_value(self) -> float:
        return self.selection.value

    @property
    def best_value_std(self) -> float:
        return self.selection.std

    @property
    def best_metrics(self) -> dict:
        return self.selection.metrics or {}

    @property
    def baseline_metrics(self) -> dict | None:
        return self.selection.baseline_metrics

    @property
    def baseline_value(self) -> float | None:
        return self.selection.baseline_value

    @property
    def best_trial_number(self) -> int:
        return self.selection.chosen.number

    @property
    def best_hp(self) -> dict:
        """The chosen trial's values of ``build_model``'s ``hp`` (``{}`` without any)."""
        return dict(self.selection.chosen.hp_values)

    def trials_dataframe(self):
        """One row per trial: number, state, value and parameters."""
        return self.search.trials_dataframe()

    def export(self, path: str | os.PathLike) -> str:
        """Write the best config as JSON (rebuild later with ``lossearch.load_loss``); a path
        that is the search's storage or space file is refused."""
        refuse_inputs("path", path, self.inputs)
        self.best_config.to_json(path)
        return os.fspath(path)

    def search_summary(self) -> SearchSummary:
        """What :meth:`summary`, :meth:`report` and the MLflow parent run show."""
        return StoredStudy(self.search.state, self.search.name).summary_with(
            self.selection,
            importances=self.search.importances(),
            seconds=dict(self.seconds),
            closed=self.closed,
            test=self.test_metrics,
        )

    def report(self, path: str | os.PathLike) -> str:
        """Write a self-contained HTML report (plots embedded) and return its path.

        It shows the best config, its per-class metrics beside the CE baseline, the
        optimisation history and the parameter importances; no MLflow needed to read it.

        Example:
            >>> result.report("report.html")  # doctest: +SKIP
            'report.html'
        """
        refuse_inputs("path", path, self.inputs)
        return write_report(self.search_summary(), path)

    def summary(self) -> str:
        """The pick against the CE baseline, per class, as text."""
        return self.search_summary().text()
