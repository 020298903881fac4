"""What a search session needs from a backend, and the per-trial routine they share.

A driver decides *which* loss configs to run (Optuna's sampler and pruner, a Keras
Tuner oracle); :meth:`BaseDriver.run_trial` runs one of them the same way for every
driver: seeded, trained by the shared :class:`~lossearch.runner.TrialRunner`, its
epochs and outcome written to one MLflow child run, kept as a
:class:`~lossearch.study.state.TrialRecord`. In the manner of Optuna's ``BaseSampler``:
the methods a driver must answer are abstract; the multi-worker hooks default to a
single worker.
"""

from __future__ import annotations

import abc
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from lossearch import _interrupt
from lossearch._secrets import one_line_reason
from lossearch.config import LossConfig
from lossearch.runner import TrialPruned, TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.stopping import SearchProgress
from lossearch.study import state as keys
from lossearch.study.state import (
    StudyState,
    TrialRecord,
    is_lossearch_trial,
    record_of,
    user_hp_values,
)
from lossearch.tracking.runs import Tracker, TrialRun

log = logging.getLogger("lossearch")


class TrialFailed(Exception):
    """A trial raised or diverged; the message is the reason, credentials masked."""


class TrialHooks:
    """What a driver hears during one trial; every hook defaults to nothing."""

    def started(self, run: TrialRun) -> None:
        """The trial's MLflow run exists (``run.run_id`` is None when MLflow is down)."""

    def epoch(self, step: int, value: float, logs: dict[str, float]) -> bool:
        """The validation objective after an epoch; True prunes the trial."""
        return False

    def ended(self) -> None:
        """The trial ended, however it ended."""


class _EpochReporter:
    """The runner's per-epoch reporter: MLflow gets every epoch, the driver's hooks decide
    whether to prune."""

    def __init__(self, tracker: Tracker, run: TrialRun, hooks: TrialHooks):
        self.tracker, self.run, self.hooks = tracker, run, hooks

    def report(self, step: int, value: float, logs: dict[str, float]) -> bool:
        self.tracker.log_epoch(self.run, step, logs)
        return self.hooks.epoch(step, value, logs)


class BaseDriver(abc.ABC):
    """A backend driving a search over ``space`` through the shared ``runner``.

    Subclasses implement the abstract methods and set ``state``, the
    :class:`~lossearch.study.state.StudyState` their search keeps; the hooks ``join``,
    ``exclusive``, ``claim_finish`` and ``importances`` have single-worker defaults.
    """

    state: StudyState

    def __init__(self, runner: TrialRunner, space: SearchSpace, tracker: Tracker, seed: int | None):
        self.runner, self.space, self.tracker, self.seed = runner, space, tracker, seed
        self.records: dict[int, TrialRecord] = {}  # trials this process ran

    # -- required ------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The study's (or tuner project's) name."""

    @property
    @abc.abstractmethod
    def handle(self) -> Any:
        """What ``SearchResult.study`` exposes (the Optuna study, the Keras Tuner tuner)."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """Backend settings for the MLflow parent run's params."""

    @abc.abstractmethod
    def run(self, n_trials: int, *, timeout, n_jobs: int, show_progress: bool) -> None:
        """Run trials (recipes first) until the search holds ``n_trials`` finished ones."""

    # -- what the search keeps: written and read through its state, the same on every backend

    def completed_records(self) -> list[TrialRecord]:
        """Every completed trial, including those other workers ran: from memory when this
        process ran it (with its predictions), else as the search keeps it."""
        return [
            self.records.get(t.number) or record_of(t)
            for t in self.state.trials(("COMPLETE",))
            if is_lossearch_trial(t)  # a replayed twin is not a measurement
        ]

    def trial_states(self) -> list[tuple[int, str, float | None]]:
        """``(number, state, value)`` per trial; state COMPLETE, PRUNED, FAIL, ..."""
        return [(t.number, t.state, t.value) for t in self.state.trials()]

    def failure_reasons(self) -> list[str]:
        trials = self.state.trials()
        return [t.user_attrs[keys.FAIL_REASON] for t in trials if keys.FAIL_REASON in t.user_attrs]

    def trials_dataframe(self):
        return self.state.trials_dataframe()

    def saved_parent_run(self) -> str | None:
        """The MLflow parent run saved with the search (a resumed search reuses it)."""
        return self.state.attrs.get(keys.PARENT_RUN)

    def save_parent_run(self, run_id: str, description: dict) -> None:
        """Keep the parent run's id and its ``SearchRun.to_dict()`` with the search."""
        self.state.set(keys.PARENT_RUN, run_id)
        self.state.set(keys.PARENT_RUN_DESCRIPTION, description)

    def remember_choice(self, choice: dict, seconds: dict[str, float], test: dict | None) -> None:
        """Keep the ``Selection.to_dict()``, the phases' wall time, the importances (so
        that ``lossearch report`` reads them without scikit-learn) and the test scores."""
        self.state.set(keys.CHOICE, choice)
        self.state.set(keys.SECONDS, seconds)
        self.state.set(keys.IMPORTANCES, self.importances())
        if test is not None:
            self.state.set(keys.TEST, test)

    # -- hooks for many workers; one worker by default ---------------------------------------

    def join(self) -> None:  # noqa: B027 - an optional hook, like BaseSampler's
        """Count this worker in (the Optuna driver gives each worker its own seed)."""

    def exclusive(self) -> AbstractContextManager:
        """Held while a worker creates or closes the shared parent run."""
        return nullcontext()

    def claim_finish(self) -> bool:
        """True for the one worker that closes the search; call under :meth:`exclusive`."""
        return True

    def importances(self) -> dict[str, float]:
        return {}

    # -- stopping early: the same rule on every backend that reports its progress --------------

    stopper = None  # a lossearch.stopping.BaseStopper, or None to search the whole budget

    def search_progress(self) -> SearchProgress | None:
        """What a stopper sees now; None (the default) never stops the search."""
        return None

    def stop_reason(self) -> str | None:
        """Why the search stops before its budget: decided once and kept with the search, so
        that every worker stops at its next trial too (under :meth:`exclusive`)."""
        if self.stopper is None:
            return None
        reason = self.state.attrs.get(keys.STOPPED_EARLY)
        progress = None if reason is not None else self.search_progress()
        if progress is not None:
            reason = self.stopper.reason_to_stop(progress)
            if reason is not None:
                # the contenders first: a worker that sees the reason finds them beside it
                self.state.set(keys.CONTENDERS, self.stopper.contenders(progress))
                self.state.set(keys.STOPPED_EARLY, reason)
        return reason

    def stopped_early(self) -> str | None:
        """Why the search stopped before its trial budget (:mod:`lossearch.stopping`), or
        None: it used the budget, or it searches without a stopper."""
        return self.state.attrs.get(keys.STOPPED_EARLY) if self.stopper else None

    def contenders(self) -> list[int] | None:
        """After an early stop, the trials the confirmation may race
        (:meth:`lossearch.stopping.BaseStopper.contenders`), else None."""
        return self.state.attrs.get(keys.CONTENDERS) if self.stopped_early() else None

    def forget_an_old_stop(self) -> None:
        """A search resumed without a stopper searches on past where one stopped it."""
        if self.stopper is None and self.state.attrs.get(keys.STOPPED_EARLY):
            self.state.set(keys.STOPPED_EARLY, None)
            self.state.set(keys.CONTENDERS, None)

    def complete_choice(self, n_trials: int) -> dict | None:
        """The stored ``Selection.to_dict()`` when the search already holds ``n_trials``
        finished trials and closed on exactly those (a rerun then has nothing to do)."""
        return None

    # -- the per-trial routine every driver shares --------------------------------------------

    def run_trial(
        self,
        number: int,
        config: LossConfig,
        hp,
        *,
        recipe: str | None,
        tags: dict,
        hooks: TrialHooks | None = None,
        epochs: int | None = None,
    ) -> TrialRecord:
        """Train and score one config under its own seed and MLflow child run.

        Raises:
            TrialPruned: the hooks pruned it (its run is closed as PRUNED).
            TrialFailed: it raised or diverged (its run is closed as FAIL with the reason).
        """
        _interrupt.raise_if_requested()  # a Ctrl-C seen between trials
        hooks = hooks or TrialHooks()
        run = self.tracker.start_trial(number, config, {"recipe": recipe or "", **tags})
        hooks.started(run)
        seed = None if self.seed is None else self.seed + number
        run.folds = len(self.runner.data.splits)
        run.fold_epochs = self.runner.epochs if epochs is None else epochs
        reporter = _EpochReporter(self.tracker, run, hooks)

        def close(state: str, reason: str) -> None:
            # hp values exist once build_model has drawn them, so they are read at the end
            self.tracker.end_trial(run, state, config=config, hp=_user_values(hp), reason=reason)

        try:
            outcome = self.runner.run(config, hp=hp, seed=seed, epochs=epochs, reporter=reporter)
        except TrialPruned as exc:
            close("PRUNED", str(exc))
            raise
        except KeyboardInterrupt:
            close("INTERRUPTED", "KeyboardInterrupt")
            raise
        except Exception as exc:
            if _interrupt.requested():  # Ctrl-C, surfaced inside TensorFlow as another error
                close("INTERRUPTED", "KeyboardInterrupt")
                raise KeyboardInterrupt from exc
            reason = one_line_reason(exc)
            close("FAIL", reason)
            log.warning("lossearch: trial %d failed (%s); the search goes on.", number, reason)
            raise TrialFailed(reason) from exc
        finally:
            hooks.ended()
        record = TrialRecord(
            number,
            outcome.value,
            config,
            _user_values(hp),
            recipe,
            outcome.y_prob,
            outcome.metrics.to_dict(),
            outcome.epochs_trained,
            outcome.decision,
            outcome.y_score,
        )
        self.tracker.end_trial(run, "COMPLETE", config=config, hp=record.hp_values, record=record)
        self.records[number] = record
        return record


def _user_values(hp) -> dict:
    return user_hp_values(dict(getattr(hp, "values", {})))
