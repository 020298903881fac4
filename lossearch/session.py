"""A search session: one search from the first trial to the returned result.

:func:`build_session` opens what a search needs (the storage, MLflow, the backend's
driver) around a trial runner; :func:`lossearch.optimize` and the tests' fake runner both
use it. A :class:`SearchSession` then owns what comes next: the MLflow parent run (opened
once for all workers, reopened on resume), the driver's trials, an interrupt, the choice
(:func:`lossearch.selection.select`), the refit, what the study and MLflow keep of the
choice, and the :class:`SearchResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import keras

from lossearch import _interrupt
from lossearch._secrets import one_line_reason
from lossearch.backends import create_driver
from lossearch.backends.base import BaseDriver
from lossearch.data import PreparedData
from lossearch.layers import with_decision
from lossearch.metrics import evaluate
from lossearch.result import SearchResult
from lossearch.runner import TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.selection import Selection, select, validation_support
from lossearch.selection.roles import declared_incumbent
from lossearch.settings import SearchSettings, resolve_storage, storage_name
from lossearch.study.state import TrialRecord
from lossearch.study.storages import open_storage, storage_file
from lossearch.summary import SearchRun
from lossearch.tracking.model import log_keras_model
from lossearch.tracking.runs import Tracker

log = logging.getLogger("lossearch")


@dataclass(frozen=True)
class OpenedStorage:
    """Where the search keeps its trials, as the session opened it from the settings'
    ``storage`` and ``study_name`` (which stay as the user gave them)."""

    storage: Any  # an Optuna storage, or None: in memory (Keras Tuner keeps its project)
    name: str | None  # safe to log (credentials masked)
    file: str | None  # the file the study lives in (SQLite, journal), an input of the search
    resumable: bool

    @classmethod
    def open(cls, settings: SearchSettings) -> OpenedStorage:
        """A bad URL fails here, before any trial."""
        storage = resolve_storage(settings.storage, settings.study_name)
        on_disk = storage_file(storage)
        optuna = settings.backend == "optuna"
        return cls(
            open_storage(storage) if optuna else None,
            storage_name(storage),
            None if on_disk is None else str(on_disk),
            storage is not None or not optuna,
        )


def build_session(runner: TrialRunner, space: SearchSpace, settings: SearchSettings):
    """The session that runs ``runner``'s trials over ``space`` as ``settings`` say: the
    storage opened (a bad URL fails here, before any trial), MLflow reached (an
    unreachable server too) and the backend's driver created."""
    opened = OpenedStorage.open(settings)
    tracker = Tracker(settings.tracking_uri, settings.experiment_name)
    driver = create_driver(runner, space, tracker, settings, opened.storage)
    return SearchSession(runner, space, tracker, driver, settings, opened)


class SearchSession:
    """Runs one search with ``driver`` and turns its trials into a :class:`SearchResult`."""

    def __init__(
        self,
        runner: TrialRunner,
        space: SearchSpace,
        tracker: Tracker,
        driver: BaseDriver,
        settings: SearchSettings,
        storage: OpenedStorage,
    ):
        self.runner, self.space, self.tracker = runner, space, tracker
        self.driver, self.settings, self.storage = driver, settings, storage

    @property
    def data(self) -> PreparedData:
        return self.runner.data

    def run(self) -> SearchResult:
        """Trials until the budget is spent, then the choice; raises ``KeyboardInterrupt``
        after closing what it must (on Ctrl-C, whatever exception it surfaced as inside
        TensorFlow: :mod:`lossearch._interrupt`), ``RuntimeError`` when no trial completed."""
        with _interrupt.watching():
            return self._run()

    def _run(self) -> SearchResult:
        s, driver = self.settings, self.driver
        complete = driver.complete_choice(s.n_trials)
        if complete is not None:  # a rerun of a finished search: nothing to search or close
            return self._complete(complete)
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
                self.tracker.end_search("FAILED", "no trial completed")
            reasons = driver.failure_reasons()
            first = f"; first failure: {reasons[0]}" if reasons else "."
            raise RuntimeError("lossearch: no trial completed" + first)
        if not closes:
            log.warning(
                "lossearch: other workers still run trials of %r; the last one to finish "
                "selects the loss and closes the MLflow parent run. This worker returns the "
                "best trial so far.",
                driver.name,
            )
        rule = s.selection if closes else "best"
        result = self._result(records, rule, parent_id, time.perf_counter() - started)
        result.closed = closes
        if closes:
            self._finish(result)
        return result

    def _finish(self, result: SearchResult) -> None:
        """Keep the choice in the study, then the model, report and artifacts in MLflow.

        Nothing fails the search from here on: its trials are in the study already and
        ``result`` is returned; a failure is warned of and closes the parent run FAILED
        with the reason (``lossearch sync-mlflow`` can write the artifacts later).
        """
        try:
            self.driver.remember_choice(
                result.selection.to_dict(), result.seconds, result.test_metrics
            )
            if self.tracker.offline:  # said once already, with how to sync MLflow later
                reason = (
                    f"MLflow stopped answering during the search ({self.tracker.offline_reason})"
                )
                self.tracker.end_search("FAILED", reason, quiet=True)
                return
            self._log_model(result)
            self.tracker.close_search(result.search_summary(), self.driver.trials_dataframe())
        except Exception as exc:
            reason = one_line_reason(exc, limit=500)
            log.warning(
                "lossearch: the search finished, but writing its results failed (%s). The "
                "result is returned and the study keeps every trial.",
                reason,
            )
            self.tracker.end_search("FAILED", reason)

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

    def search_run(self) -> SearchRun:
        """What the parent run is opened with: the search's settings as params and tags."""
        s, data, runner, objective = self.settings, self.data, self.runner, self.runner.objective
        names = data.class_names
        params = {
            "space": self.space.name,
            "objective": objective.name,
            "direction": objective.direction,
            "n_trials": s.n_trials,
            "epochs": runner.epochs,
            "batch_size": runner.batch_size,
            "cv": data.cv,
            "scoring": data.scoring,
            "validation": data.validation,
            "decision": runner.tune_decision,
            "seed": s.seed,
            "task": data.task,
            "class_counts": dict(zip(names, data.class_counts, strict=True)),
            "minority_classes": [names[i] for i in runner.minority_classes],
            **self.driver.describe(),
        }
        tags = {
            "study_name": self.driver.name,
            "storage": self.storage.name or "in-memory",
            "lossearch.space": self.space.source,
            "lossearch.keras_backend": keras.backend.backend(),
        }
        return SearchRun(self.driver.name, params, tags)

    def _open_parent(self) -> str:
        """The parent run saved with the search, else a new one (saved with it)."""
        existing = self.driver.saved_parent_run()
        run = self.search_run()
        parent = self.tracker.open_search(run, existing)
        if parent != existing:
            self.driver.save_parent_run(parent, run.to_dict())
            split = self.data.splits[0]
            self.tracker.log_dataset(
                split.x_train, split.y_train, self.data.class_counts, self.data.class_names
            )
        return parent

    def _broken(self, exc: Exception) -> NoReturn:
        """The trial loop itself failed (a trial's own failure never gets here)."""
        reason = one_line_reason(_first_failure(exc), limit=500)
        self.tracker.end_search("FAILED", reason)
        where = self.storage.name or "memory"
        raise RuntimeError(
            f"lossearch: the search stopped: {reason}. Trials already completed are in "
            f"{where!r} if it can still be read; check the storage, then rerun with the same "
            "study_name to resume."
        ) from exc

    def _interrupted(self) -> None:
        with self.driver.exclusive():
            if self.driver.claim_finish():  # not while other workers still run trials
                self.tracker.end_search("KILLED")
        where = f" ({self.storage.name})" if self.storage.name else ""
        how = (
            "rerun with the same storage and study_name to resume."
            if self.storage.resumable
            else "pass storage= and study_name= to make searches resumable."
        )
        log.warning(
            "Interrupted. Completed trials are kept in %r%s; %s", self.driver.name, where, how
        )

    # -- the choice and the result -------------------------------------------------------------

    def _result(
        self, records: list[TrialRecord], rule: str, parent_id, search_seconds: float
    ) -> SearchResult:
        s, started = self.settings, time.perf_counter()
        selection = select(
            records,
            self.runner.objective,
            rule,
            runner=self.runner,
            confirm_seeds=s.confirm_seeds,
            seed=s.seed,
            contenders=self.driver.contenders(),
        )
        seconds = {"search": search_seconds, "confirmation": time.perf_counter() - started}
        selection = self._note_a_missing_incumbent(selection)
        for note in self.space.skipped_recipes:  # a value outside the user's narrowed space
            selection = selection.with_warning(note)
        for note in selection.warnings:
            warnings.warn(note, UserWarning, stacklevel=5)  # the caller of optimize
        return self._refit_result(selection, parent_id, seconds)

    def _note_a_missing_incumbent(self, selection: Selection) -> Selection:
        """The recipe declared the incumbent runs first; should it not have completed (it
        failed, or the search was stopped), the summary says what stood in for it."""
        declared = declared_incumbent(self.space.recipes, self.runner.objective, self.data.task)
        if selection.rule != "robust" or declared is None or selection.incumbent is None:
            return selection
        declared, stood_in = declared.name, selection.incumbent.recipe
        if stood_in == declared:
            return selection
        return selection.with_warning(
            f"the declared recipe to beat, {declared!r}, did not complete; recipe "
            f"{stood_in!r} stood in for it"
        )

    def _complete(self, choice: dict) -> SearchResult:
        """A finished study's pick, as ``lossearch export`` reads it: no trial, worker or
        MLflow change; only the refit trains (it is not logged)."""
        records = self.driver.completed_records()
        selection = Selection.from_dict(choice, records) or select(
            records, self.runner.objective, "best"
        )
        more = "early_stop=False" if self.driver.stopped_early() else "a larger n_trials"
        log.warning(
            "lossearch: study %r is complete (%d finished trials, closed); this returns its "
            "pick as `lossearch export` reads it. Pass %s to search on, or another "
            "study_name for a new search.",
            self.driver.name,
            len(records),
            more,
        )
        return self._refit_result(selection, self.driver.saved_parent_run(), {})

    def _refit_result(self, selection: Selection, parent_id, seconds: dict) -> SearchResult:
        """The result of ``selection``, with the pick refit on all labelled data."""
        selection = dataclasses.replace(selection, data_facts=self.runner.refit_facts())
        started, refit = time.perf_counter(), self.settings.refit
        trained, selection = self._refit(selection) if refit else (None, selection)
        model = trained
        if trained is not None and selection.decision is not None:
            model = with_decision(trained, selection.decision, from_logits=self.runner.from_logits)
        test = self._test(selection, trained) if trained is not None else None
        return SearchResult(
            selection=selection,
            objective=self.runner.objective.name,
            direction=self.runner.objective.direction,
            study=self.driver.handle,
            search=self.driver,
            mlflow_run_id=parent_id,
            mlflow_experiment_id=self.tracker.experiment_id,
            model=model,
            trained_model=trained,
            class_counts=self.data.class_counts,
            validation_counts=validation_support(self.data),
            seconds={**seconds, **({"refit": time.perf_counter() - started} if refit else {})},
            test_metrics=test,
            inputs={
                "the storage": self.storage.file,
                "the space file": self._space_file(),
            },
        )

    def _space_file(self) -> str | None:
        source = self.space.source
        return source if source and Path(source).is_file() else None

    def _test(self, selection: Selection, trained) -> dict | None:
        """The refit pick and plain CE refit the same way, each with its own tuned decision
        rule (the baseline validation compares against: one plain CE everywhere), scored
        once on ``test_data``; it chose nothing. ``{"pick": Metrics.to_dict(), "baseline":
        ... or None}``."""
        if self.data.test is None:
            return None
        x, y = self.data.test
        runner, baseline = self.runner, selection.baseline
        pick = runner.predict(trained, x)
        if selection.decision is not None:
            pick = selection.decision.apply(pick)
        scored = {"pick": evaluate(y, pick, **runner.context).to_dict()}
        scored["baseline"] = None
        if baseline is not None and baseline.number != selection.chosen.number:
            try:
                ce = runner.refit(baseline, self.settings.seed)
            except Exception:  # the pick's result stands without it
                return scored
            probabilities = runner.predict(ce, x)
            if baseline.decision is not None:  # plain CE as on validation: its own rule
                probabilities = baseline.decision.apply(probabilities)
            scored["baseline"] = evaluate(y, probabilities, **runner.context).to_dict()
        elif baseline is not None:
            scored["baseline"] = scored["pick"]
        return scored

    def _refit(self, selection: Selection) -> tuple[keras.Model | None, Selection]:
        """The pick retrained on all labelled data; ``None`` (and a note why) when that
        training fails: the search's results do not depend on it."""
        try:
            return self.runner.refit(selection.chosen, self.settings.seed), selection
        except Exception as exc:
            note = f"refit failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
            warnings.warn(f"lossearch: {note}; result.model is None.", UserWarning, stacklevel=7)
            return None, selection.with_warning(note)


def _first_failure(exc: BaseException) -> BaseException:
    """The failure to report: Optuna's clean-up after a lost storage can fail in turn (an
    ``UnboundLocalError`` once Redis went away), and then the storage's error, the one the
    user can act on, is the exception it happened during."""
    while isinstance(exc, UnboundLocalError | NameError | AssertionError) and exc.__context__:
        exc = exc.__context__
    return exc
