"""``lossearch sync-mlflow``: bring MLflow up to date with a stored search (an Optuna study
or a Keras Tuner project).

A search goes on when MLflow stops answering; every trial's config, metrics and
per-epoch scores stay with the search (:mod:`lossearch.study.state`). This writes what
MLflow misses: one child run per finished trial under the study's parent run.
It never duplicates: a trial whose child run exists and has ended is skipped,
and a run left RUNNING (MLflow dropped mid-trial, or the worker died) is
completed in place. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lossearch._secrets import mask_credentials
from lossearch._validation import NON_EMPTY_STR, validate_params
from lossearch.study import state as keys
from lossearch.study.state import FINISHED, StoredTrial, config_of, record_of, user_hp_values
from lossearch.study.stored import StoredStudy
from lossearch.tracking.runs import Tracker, TrialRun


@dataclass
class SyncReport:
    parent_run_id: str
    created: list[int] = field(default_factory=list)  # trial numbers given a new child run
    completed: list[int] = field(default_factory=list)  # runs left RUNNING, now closed
    skipped: int = 0  # already in MLflow

    def __str__(self) -> str:
        return (
            f"parent run {self.parent_run_id}: {len(self.created)} child runs created, "
            f"{len(self.completed)} completed, {self.skipped} already there"
        )


@validate_params({"experiment_name": [NON_EMPTY_STR]})
def sync_mlflow(
    storage: str,
    study_name: str,
    *,
    tracking_uri: str | None = None,
    experiment_name: str = "lossearch",
) -> SyncReport:
    """Log the study's finished trials that MLflow is missing.

    Example:
        >>> sync_mlflow("sqlite:///lossearch.db", "digits",  # doctest: +SKIP
        ...             tracking_uri="http://127.0.0.1:5000")
    """
    stored = StoredStudy.load(storage, study_name, require_results=False)
    ours = [t for t in stored.state.trials(FINISHED) if keys.CONFIG in t.user_attrs]
    if keys.OBJECTIVE not in stored.state.attrs and not ours:  # before writing anything
        raise ValueError(
            f"study: {study_name!r} was not written by lossearch (no trial holds a loss "
            "config); sync-mlflow logs lossearch searches only."
        )
    tracker = Tracker(tracking_uri, experiment_name)  # fails fast when unreachable
    parent_id = open_parent(tracker, stored, storage=mask_credentials(storage))
    report = SyncReport(parent_id)
    existing = tracker.trial_runs()
    params = stored.search_run().params  # how the search trained: its folds and epochs
    folds = {"folds": params.get("cv") or 1, "fold_epochs": params.get("epochs") or 0}
    for trial in ours:  # a trial the user added by hand has no loss to log
        run = existing.get(trial.number)
        if run is not None and run.info.status != "RUNNING":
            report.skipped += 1
            continue
        (report.created if run is None else report.completed).append(trial.number)
        run_id = None if run is None else run.info.run_id
        log_trial(
            tracker,
            trial,
            stored.objective,
            run_id=run_id,
            tags={"study": study_name, "lossearch.synced": "true"},
            **folds,
        )
    if tracker.offline:
        raise RuntimeError(
            f"MLflow at {mask_credentials(tracker.tracking_uri)} stopped answering during the "
            "sync; run it again (it skips what is already there)."
        )
    _close_parent(tracker, stored)
    return report


def open_parent(tracker: Tracker, stored: StoredStudy, *, storage: str | None = None) -> str:
    """The study's MLflow parent run, reopened; a new one (saved in the study) opened with
    the params the search kept, when the study has none or MLflow lost it."""
    existing = stored.state.attrs.get(keys.PARENT_RUN)
    run = stored.search_run(storage)
    parent_id = tracker.open_search(
        dataclasses.replace(run, tags={**run.tags, "lossearch.synced": "true"}), existing
    )
    if parent_id != existing:
        stored.state.set(keys.PARENT_RUN, parent_id)
    return parent_id


def log_trial(
    tracker: Tracker,
    trial: StoredTrial,
    objective: str,
    *,
    run_id=None,
    tags=None,
    folds: int = 1,
    fold_epochs: int = 0,
) -> None:
    """One finished trial as a child run of the tracker's parent (a new run, or the run
    ``run_id`` left RUNNING), from what the study holds; ``folds`` of ``fold_epochs``
    epochs each when the search scored out-of-fold (its curves, one step per epoch)."""
    if run_id is None:
        tags = {"recipe": trial.user_attrs.get(keys.RECIPE) or "", **(tags or {})}
        run = tracker.start_trial(trial.number, config_of(trial), tags)
    else:
        run = TrialRun(run_id, number=trial.number)
    run.folds, run.fold_epochs = folds, fold_epochs
    _log_trial(tracker, run, trial, objective)


def _log_trial(tracker: Tracker, run: TrialRun, trial: StoredTrial, objective: str):
    state = trial.state
    if state == "FAIL" and trial.user_attrs.get(keys.INTERRUPTED):
        state = "INTERRUPTED"
    losses = trial.user_attrs.get(keys.EPOCH_LOSS, [])
    for step, value in sorted(trial.intermediate_values.items()):
        logs = {f"val_{objective}": value}
        if step < len(losses) and losses[step] is not None:
            logs["loss"] = losses[step]
        tracker.log_epoch(run, step, logs)
    complete = state == "COMPLETE"  # a user objective stores no metrics: its value alone
    reason = trial.user_attrs.get(keys.FAIL_REASON)
    if state == "FAIL" and reason is None:
        reason = "the worker stopped (no heartbeat) before the trial ended"
    tracker.end_trial(
        run,
        state,
        config=config_of(trial),
        hp=user_hp_values(trial.params),
        record=record_of(trial) if complete else None,
        reason=reason,
    )


def _close_parent(tracker: Tracker, stored: StoredStudy):
    """Close the parent run as the search would have, had MLflow answered when it ended:
    once no trial runs, if the search closed and its parent is still RUNNING."""
    running = stored.state.trials(("RUNNING",))
    if running or not stored.closed or tracker.parent_status() != "RUNNING":
        return
    tracker.close_search(stored.summary(), stored.state.trials_dataframe())
