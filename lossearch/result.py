"""``SearchResult``: what ``optimize`` returns."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lossearch.config import LossConfig
from lossearch.report import SUMMARY_KEYS, ReportContent, write_report


@dataclass
class SearchResult:
    """The chosen loss, how it compares with the CE baseline, and the study behind it.

    Attributes:
        best_config: the chosen :class:`LossConfig` (carries class counts and names).
        best_value: its objective, the mean over its confirmation runs.
        best_value_std: seed-to-seed standard deviation of that objective.
        best_metrics: per-class and summary metrics, pooled over its confirmation runs
            (``selection="best"``: of its search trial).
        baseline_metrics / baseline_value: the same for the plain cross-entropy baseline,
            measured with the same runs as the pick (or None).
        objective / direction: what was optimised.
        study: the Optuna study (Keras Tuner backend: the tuner);
            ``mlflow_run_id``: the parent MLflow run.
        model: the best config retrained on train + validation (``refit=True``), with its
            decision rule as the last layer: ``model.predict`` gives adjusted probabilities
            whose arg-max (or ``>= 0.5``) is the tuned decision; save it as ``.keras``.
        trained_model: the same model without the decision layer, compiled with the
            user's optimizer and metrics and the chosen loss (to train on or evaluate).
        best_hp: your own hyperparameters (``build_model(hp)``) of the chosen trial,
            ``{}`` when the builder takes none.
        selection: the confirmation table, the reason for the choice and any
            ``warnings`` that the validation split was too small to judge.
        validation_counts: validation samples per class (multi-label: positives).
        seconds: this process's wall time per phase: ``search`` (its trials),
            ``confirmation`` (the confirmation runs and the choice) and ``refit``; logged
            to the MLflow parent run as ``seconds_search`` and so on.
        model_uri: ``model`` as logged to MLflow (``models:/m-...``; load it with
            ``mlflow.keras.load_model`` after ``import lossearch``), or ``None``.

    ``best_config.decision`` holds the tuned decision rule; ``model`` applies it (its
    output is adjusted probabilities; :func:`lossearch.layers.without_decision`
    gives the raw model).
    """

    best_config: LossConfig
    best_value: float
    best_metrics: dict
    baseline_metrics: dict | None
    objective: str
    direction: str
    study: Any
    mlflow_run_id: str | None
    best_trial_number: int
    best_value_std: float = 0.0
    baseline_value: float | None = None
    model: Any = None
    trained_model: Any = None
    selection: dict = field(default_factory=dict)
    class_counts: list[int] = field(default_factory=list)
    validation_counts: list[int] = field(default_factory=list)
    search: Any = None  # the backend driver, for trial listings
    best_hp: dict = field(default_factory=dict)  # the chosen trial's values of build_model's hp
    model_uri: str | None = None  # the refit model in MLflow (models:/...), when logged
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase

    def trials_dataframe(self):
        """One row per trial: number, state, value and parameters."""
        return self.search.trials_dataframe()

    def export(self, path: str | os.PathLike) -> str:
        """Write the best config as JSON (rebuild later with ``lossearch.load_loss``)."""
        return self.best_config.to_json(path)

    def report(self, path: str | os.PathLike, title: str | None = None) -> str:
        """Write a self-contained HTML report (plots embedded) and return its path.

        It shows the best config, its per-class metrics beside the CE baseline, the
        optimisation history and the parameter importances; no MLflow needed to read it.

        Example:
            >>> result.report("report.html")  # doctest: +SKIP
            'report.html'
        """
        return write_report(self.report_content(title), path)

    def report_content(self, title: str | None = None) -> ReportContent:
        """What :meth:`report` and the MLflow parent run's report show."""
        trials = self.search.trial_states()
        return ReportContent(
            title=title or f"lossearch: {self.search.name}",
            objective=self.objective,
            direction=self.direction,
            best_config=self.best_config,
            best_trial=self.best_trial_number,
            best_value=self.best_value,
            best_value_std=self.best_value_std,
            best_metrics=self.best_metrics,
            baseline_metrics=self.baseline_metrics,
            baseline_value=self.baseline_value,
            selection_reason=self.selection.get("reason", ""),
            baseline_runs=self.selection.get("baseline_runs", 1),
            warnings=list(self.selection.get("warnings", [])),
            history=[(n, v) for n, state, v in trials if state == "COMPLETE"],
            states=dict(Counter(state for _, state, _ in trials)),
            importances=self.search.importances(),
        )

    def summary(self) -> str:
        """A table of the best config against the CE baseline, per class."""
        trials = self.search.trial_states()
        states = {
            name: sum(state == name for _, state, _ in trials)
            for name in ("COMPLETE", "PRUNED", "FAIL")
        }
        lines = [
            f"lossearch: {len(trials)} trials ({states['COMPLETE']} complete, "
            f"{states['PRUNED']} pruned, {states['FAIL']} failed); "
            f"objective {self.objective} ({self.direction})",
            f"best:      {self.best_config.describe()}"
            + (
                f"  [recipe {self.selection.get('recipe')}]" if self.selection.get("recipe") else ""
            ),
            f"           {self.objective} = {self.best_value:.4f}"
            + (
                f" ± {self.best_value_std:.4f} over {self.selection['runs']} runs"
                if self.selection.get("runs", 1) > 1
                else ""
            ),
        ]
        if self.best_hp:
            lines.append(
                "your hp:   "
                + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in self.best_hp.items()
                )
            )
        if self.baseline_value is not None:
            runs = self.selection.get("baseline_runs", 1)
            lines.append(
                f"baseline:  ce() {self.objective} = {self.baseline_value:.4f}"
                + (f" over {runs} runs (the same seeds and epochs)" if runs > 1 else "")
            )
        if self.selection.get("scoring"):
            lines.append(f"scoring:   {self.selection['scoring']}")
        if self.selection.get("reason"):
            lines.append(f"selection: {self.selection['reason']}")
        if self.seconds:
            lines.append(
                "time:      " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
            )
        lines += [f"warning:   {note}" for note in self.selection.get("warnings", [])]
        lines += self._failure_lines()
        lines.append("")
        confirmed = self.selection.get("runs", 1) > 1
        lines.append(
            "validation metrics, "
            + (
                f"pooled over the confirmation runs of each (best: trial {self.best_trial_number}):"
                if confirmed
                else f"of the search trials (best: trial {self.best_trial_number}):"
            )
        )
        lines.append(self._per_class_table())
        return "\n".join(lines)

    def _failure_lines(self, shown: int = 3) -> list[str]:
        """Why trials failed: each distinct reason once, with how many trials it ended."""
        counts = Counter(self.search.failure_reasons())
        lines = [
            f"failed:    {n} trial{'s' if n > 1 else ''}: {reason}"
            for reason, n in counts.most_common(shown)
        ]
        if len(counts) > shown:
            lines.append(f"           and {len(counts) - shown} other reasons")
        return lines

    def _per_class_table(self) -> str:
        best = self.best_metrics.get("per_class", {})
        base = (self.baseline_metrics or {}).get("per_class", {})
        names = list(best)
        width = max([5, *map(len, names)])
        header = f"{'class':<{width}} {'n_train':>8} {'n_val':>6} " + " ".join(
            f"{k + '(' + who + ')':>11}" for k in ("recall", "f1", "ap") for who in ("CE", "best")
        )
        rows = [header, "-" * len(header)]
        for i, name in enumerate(names):
            count = self.class_counts[i] if i < len(self.class_counts) else ""
            n_val = best.get(name, {}).get("support", "")
            cells = []
            for key in ("recall", "f1", "ap"):
                for source in (base, best):
                    value = source.get(name, {}).get(key)
                    cells.append(f"{value:>11.3f}" if value is not None else f"{'-':>11}")
            rows.append(f"{name:<{width}} {count:>8} {n_val:>6} " + " ".join(cells))
        base_summary = (self.baseline_metrics or {}).get("summary", {})
        best_summary = self.best_metrics.get("summary", {})
        rows.append("")
        rows.append(f"{'metric':<20} {'CE':>8} {'best':>8}")
        for key in SUMMARY_KEYS:
            b, s = base_summary.get(key), best_summary.get(key)
            rows.append(f"{key:<20} {_cell(b):>8} {_cell(s):>8}")
        return "\n".join(rows)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"
