"""A search session: one search from the first trial to the returned result.

:func:`lossearch.optimize` validates and prepares; a :class:`SearchSession` owns what
comes next: the MLflow parent run (opened once for all workers, reopened on resume),
the driver's trials, an interrupt, the choice (:mod:`lossearch.selection`), the
refit, what the study and MLflow keep of the choice, and the :class:`SearchResult`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import time
import warnings
from typing import NoReturn

import keras

from lossearch import plots
from lossearch.backends.base import BaseDriver, one_line_reason
from lossearch.data import PreparedData
from lossearch.layers import with_decision
from lossearch.mlflow_model import log_keras_model
from lossearch.records import StoredChoice, TrialRecord, baseline_record
from lossearch.report import render_html, search_figures
from lossearch.result import SearchResult
from lossearch.runner import TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.selection import select, validation_support, validation_warnings
from lossearch.settings import SearchSettings
from lossearch.tracking import Tracker

log = logging.getLogger("lossearch")
TOP_TRIAL = "the top trial by search score"


class SearchSession:
    """Runs one search with ``driver`` and turns its trials into a :class:`SearchResult`."""

    def __init__(
        self,
        runner: TrialRunner,
        space: SearchSpace,
        tracker: Tracker,
        driver: BaseDriver,
        settings: SearchSettings,
    ):
        self.runner, self.space, self.tracker = runner, space, tracker
        self.driver, self.settings = driver, settings
        self.tracker.sync_hint = (
            f"lossearch sync-mlflow --storage {settings.storage_name} --study {driver.name}"
        )

    @property
    def data(self) -> PreparedData:
        return self.runner.data

    def run(self) -> SearchResult:
        """Trials until the budget is spent, then the choice; raises ``KeyboardInterrupt``
        after closing what it must, ``RuntimeError`` when no trial completed."""
        s, driver = self.settings, self.driver
        driver.join()
        with driver.exclusive():  # workers starting together share one parent run
            parent_id = self._open_parent()
        started = time.perf_counter()
        try:
            driver.run(
                s.n_trials, timeout=s.timeout, n_jobs=s.n_jobs, show_progress=s.show_progress
            )
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except Exception as exc:  # the storage went away, say: say so, close the parent run
            self._broken(exc)
        with driver.exclusive():
            closes = driver.claim_finish()
        records = driver.completed_records()
        if not records:
            if closes:
                self.tracker.end_search("FAILED")
            reasons = driver.failure_reasons()
            first = f"; first failure: {reasons[0]}" if reasons else "."
            raise RuntimeError("lossearch: no trial completed" + first)
        selection = s.selection
        if not closes:
            log.warning(
                "lossearch: other workers still run trials of %r; the last one to finish "
                "selects the loss and closes the MLflow parent run. This worker returns the "
                "best trial so far.",
                driver.name,
            )
            selection = "best"
        result = self._result(records, selection, parent_id, time.perf_counter() - started)
        if closes:
            self._finish(result)
        return result

    def _finish(self, result: SearchResult) -> None:
        """Keep the choice in the study, then the report, artifacts and model in MLflow.

        Nothing fails the search from here on: its trials are in the study already and
        ``result`` is returned; a failure is warned of and closes the parent run FAILED
        with the reason (``lossearch sync-mlflow`` can write the artifacts later).
        """
        try:
            self.driver.remember_choice(stored_choice(result).to_dict())
            self._close_parent(result)
        except Exception as exc:
            reason = one_line_reason(exc, limit=500)
            log.warning(
                "lossearch: the search finished, but writing its results failed (%s). The "
                "result is returned and the study keeps every trial.",
                reason,
            )
            self.tracker.set_parent_tag("finish_error", reason)
            self.tracker.end_search("FAILED")

    def _log_model(self, result: SearchResult) -> None:
        s = self.settings
        if result.model is None or not s.log_model:
            return
        result.model_uri = log_keras_model(
            self.tracker,
            result.model,
            self.data.splits[0].x_val,
            result.best_config,
            registered_model_name=s.registered_model_name,
        )
        if result.model_uri is not None:
            self.tracker.set_parent_tag("model_uri", result.model_uri)

    # -- the parent run ---------------------------------------------------------------------

    def _open_parent(self) -> str:
        """The parent run saved with the search, else a new one with the search's params."""
        existing = self.driver.saved_parent_run()
        if self.tracker.reopen_search(existing):
            return existing
        s, data, objective = self.settings, self.data, self.runner.objective
        names = data.class_names
        parent = self.tracker.start_search(
            run_name=self.driver.name,
            params={
                "space": self.space.name,
                "objective": objective.name,
                "direction": objective.direction,
                "n_trials": s.n_trials,
                "epochs": s.epochs,
                "batch_size": s.batch_size,
                "cv": data.cv,
                "scoring": data.scoring,
                "validation": s.validation if data.cv is None else None,
                "decision": s.decision,
                "seed": s.seed,
                "task": data.task,
                "class_counts": dict(zip(names, data.class_counts, strict=True)),
                "minority_classes": [names[i] for i in self.runner.minority_classes],
                **self.driver.describe(),
            },
            tags={
                "study_name": self.driver.name,
                "storage": s.storage_name or "in-memory",
                "lossearch.space": self.space.source,
                "lossearch.keras_backend": keras.backend.backend(),
            },
        )
        self.driver.save_parent_run(parent)
        split = data.splits[0]
        self.tracker.log_dataset(split.x_train, split.y_train, data.class_counts, names)
        return parent

    def _broken(self, exc: Exception) -> NoReturn:
        """The trial loop itself failed (a trial's own failure never gets here)."""
        reason = one_line_reason(exc, limit=500)
        self.tracker.set_parent_tag("finish_error", reason)
        self.tracker.end_search("FAILED")
        where = self.settings.storage_name or "memory"
        raise RuntimeError(
            f"lossearch: the search stopped: {reason}. Trials already completed are in "
            f"{where!r} if it can still be read; check the storage, then rerun with the same "
            "study_name to resume."
        ) from exc

    def _interrupted(self) -> None:
        with self.driver.exclusive():
            if self.driver.claim_finish():  # not while other workers still run trials
                self.tracker.end_search("KILLED")
        s = self.settings
        where = f" ({s.storage_name})" if s.storage_name else ""
        how = (
            "rerun with the same storage and study_name to resume."
            if s.resumable
            else "pass storage= and study_name= to make searches resumable."
        )
        log.warning(
            "Interrupted. Completed trials are kept in %r%s; %s", self.driver.name, where, how
        )

    def _close_parent(self, result: SearchResult) -> None:
        log_search_artifacts(
            self.tracker,
            result.report_content(),
            self.driver.trials_dataframe(),
            dict(result.selection),
            summary=result.summary(),
        )
        metrics = {
            "best_value": result.best_value,
            "best_value_std": result.best_value_std,
            "best_trial": result.best_trial_number,
        }
        if result.baseline_value is not None:
            metrics["baseline_value"] = result.baseline_value
        metrics.update({f"seconds_{phase}": value for phase, value in result.seconds.items()})
        self.tracker.log_search_metrics(metrics)
        self.tracker.set_parent_tag("best_loss", result.best_config.describe())
        self._log_model(result)
        self.tracker.end_search("FINISHED")

    # -- the choice and the result -------------------------------------------------------------

    def _result(
        self, records: list[TrialRecord], selection: str, parent_id, search_seconds: float
    ) -> SearchResult:
        started = time.perf_counter()
        picked = self._choose(records, selection)
        seconds = {"search": search_seconds, "confirmation": time.perf_counter() - started}
        chosen = next(r for r in records if r.number == picked["trial"])
        baseline = baseline_record(records)
        notes = validation_warnings(self.data, records, self.runner.objective)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=5)  # the caller of optimize
        started = time.perf_counter()
        trained = self._refit(chosen, notes) if self.settings.refit else None
        seconds["refit"] = time.perf_counter() - started
        model = trained
        if trained is not None and picked["decision"] is not None:
            model = with_decision(trained, picked["decision"], from_logits=self.runner.from_logits)
        return SearchResult(
            best_config=dataclasses.replace(chosen.config, decision=picked["decision"]),
            best_value=picked["value"],
            best_value_std=picked["std"],
            best_metrics=picked.get("metrics") or chosen.metrics,
            baseline_metrics=picked.get("baseline_metrics")
            or (baseline.metrics if baseline else None),
            baseline_value=picked["baseline_value"],
            objective=self.runner.objective.name,
            direction=self.runner.objective.direction,
            study=self.driver.handle,
            search=self.driver,
            mlflow_run_id=parent_id,
            best_trial_number=chosen.number,
            model=model,
            trained_model=trained,
            selection={**picked["choice"], "warnings": notes, "scoring": self.data.scoring},
            class_counts=self.data.class_counts,
            validation_counts=validation_support(self.data),
            best_hp=dict(chosen.hp_values),
            seconds=seconds,
        )

    def _refit(self, chosen: TrialRecord, notes: list[str]) -> keras.Model | None:
        """The pick retrained on all labelled data; ``None`` (and a note why) when that
        training fails: the search's results do not depend on it."""
        try:
            return self.runner.refit(chosen, self.settings.seed)
        except Exception as exc:
            note = f"refit failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
            warnings.warn(f"lossearch: {note}; result.model is None.", UserWarning, stacklevel=6)
            notes.append(note)
            return None

    def _choose(self, records: list[TrialRecord], selection: str) -> dict:
        """The chosen trial, its confirmed value and decision, and the like-for-like baseline."""
        s, objective, runner = self.settings, self.runner.objective, self.runner
        if selection == "best" or s.confirm_seeds == 0 or len(records) == 1:
            maximize = objective.direction == "maximize"
            best = max(records, key=lambda r: r.value if maximize else -r.value)
            baseline = baseline_record(records)
            return {
                "trial": best.number,
                "value": best.value,
                "std": 0.0,
                "decision": best.decision,
                "baseline_value": baseline.value if baseline else None,
                "choice": {
                    "runs": 1,
                    "recipe": best.recipe,
                    "reason": "the top trial by search score",
                },
            }
        picked = select(records, runner, objective, confirm_seeds=s.confirm_seeds, seed=s.seed)
        chosen, baseline = picked.chosen, picked.baseline
        y_true = self.data.validation_targets
        return {
            "metrics": chosen.pooled_metrics(y_true, runner.context),
            "baseline_metrics": baseline.pooled_metrics(y_true, runner.context)
            if baseline
            else None,
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


def stored_choice(result: SearchResult) -> StoredChoice:
    """What the study keeps of ``result``'s choice (for export, report and sync-mlflow)."""
    decision = result.best_config.decision
    return StoredChoice(
        trial=result.best_trial_number,
        value=result.best_value,
        reason=result.selection.get("reason", ""),
        decision=None if decision is None else decision.to_dict(),
        baseline_value=result.baseline_value,
        baseline_runs=result.selection.get("baseline_runs", 1),
        metrics=result.best_metrics,
        baseline_metrics=result.baseline_metrics,
        warnings=result.selection.get("warnings", []),
    )


def log_search_artifacts(
    tracker: Tracker, content, trials_frame, selection: dict, summary: str | None
) -> None:
    """The parent run's artifacts, for the live search and for ``sync-mlflow`` alike:
    ``best_loss.json``, ``trials.csv``, ``selection.json``, ``summary.txt`` (when given),
    ``report.html`` and the plots."""
    figures = search_figures(content)
    try:
        tracker.log_artifacts(
            {
                "best_loss.json": content.best_config.to_dict(),
                "trials.csv": _csv(trials_frame),
                "selection.json": selection,
                "summary.txt": summary,
                "report.html": render_html(content, figures),
                **figures,
            }
        )
    finally:
        plots.close(*figures.values())


def _csv(frame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()
