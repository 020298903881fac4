"""``lossearch sync-mlflow``: bring MLflow up to date with an Optuna study.

A search goes on when MLflow stops answering; every trial's config, metrics and
per-epoch scores stay in the study as trial user attributes. This writes what
MLflow misses: one child run per finished trial under the study's parent run.
It never duplicates: a trial whose child run exists and has ended is skipped,
and a run left RUNNING (MLflow dropped mid-trial, or the worker died) is
completed in place. Running it twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from lossearch.backends.optuna import (
    CHOICE_ATTR,
    FINISHED,
    OBJECTIVE_ATTR,
    PARENT_RUN_ATTR,
    stored_decision,
)
from lossearch.config import LossConfig
from lossearch.metrics import Metrics
from lossearch.runner import LOSS_PARAM_NAMES, decision_metrics
from lossearch.storages import load_study
from lossearch.tracking import Tracker, TrialRun, mask_credentials


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
    study = load_study(storage, study_name)
    tracker = Tracker(tracking_uri, experiment_name)  # fails fast when unreachable
    parent_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if parent_id is None or not _run_exists(tracker, parent_id):
        parent_id = tracker.start_search(
            run_name=study_name,
            params={"study_name": study_name, "backend": "optuna"},
            tags={"study_name": study_name, "storage": storage, "lossearch.synced": "true"},
        )
        study.set_user_attr(PARENT_RUN_ATTR, parent_id)
    tracker.resume_search(parent_id)
    tracker.experiment_id = tracker.client.get_run(parent_id).info.experiment_id
    report = SyncReport(parent_id)
    existing = _children_by_trial(tracker, parent_id)
    objective = study.user_attrs.get(OBJECTIVE_ATTR, "objective")
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        run = existing.get(trial.number)
        if run is not None and run.info.status != "RUNNING":
            report.skipped += 1
            continue
        if run is None:
            trial_run = tracker.start_trial(trial.number, _config(trial), _tags(trial, study_name))
            report.created.append(trial.number)
        else:
            trial_run = TrialRun(run.info.run_id)
            report.completed.append(trial.number)
        _log_trial(tracker, trial_run, trial, objective)
    if tracker.offline:
        raise RuntimeError(
            f"MLflow at {mask_credentials(tracker.tracking_uri)} stopped answering during the "
            "sync; run it again (it skips what is already there)."
        )
    _close_parent(tracker, study)
    return report


def _run_exists(tracker: Tracker, run_id: str) -> bool:
    try:
        tracker.client.get_run(run_id)
        return True
    except Exception:  # deleted, or the study was tracked in another store
        return False


def _children_by_trial(tracker: Tracker, parent_id: str) -> dict:
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        max_results=50000,
    )
    by_trial = {}
    for run in runs:
        number = run.data.tags.get("trial_number")
        # Keep a finished run over a RUNNING one, should both exist.
        if number is not None and (
            int(number) not in by_trial or by_trial[int(number)].info.status == "RUNNING"
        ):
            by_trial[int(number)] = run
    return by_trial


def _config(trial: FrozenTrial) -> LossConfig:
    return LossConfig.from_dict(trial.user_attrs["config"], source=f"trial {trial.number}")


def _tags(trial: FrozenTrial, study_name: str) -> dict:
    return {
        "recipe": trial.user_attrs.get("recipe") or "",
        "study": study_name,
        "lossearch.synced": "true",
    }


def _log_trial(tracker: Tracker, run: TrialRun, trial: FrozenTrial, objective: str):
    state = trial.state.name
    if state == "FAIL" and trial.user_attrs.get("interrupted"):
        state = "INTERRUPTED"
    losses = trial.user_attrs.get("epoch_loss", [])
    for step, value in sorted(trial.intermediate_values.items()):
        logs = {f"val_{objective}": value}
        if step < len(losses) and losses[step] is not None:
            logs["loss"] = losses[step]
        tracker.log_epoch(run, step, logs)
    metrics = None
    if state == "COMPLETE" and "metrics" in trial.user_attrs:
        metrics = {**Metrics(**trial.user_attrs["metrics"]).flat(), "objective": trial.value}
        metrics.update(decision_metrics(stored_decision(trial)))
    hp = {k: v for k, v in trial.params.items() if k not in LOSS_PARAM_NAMES and "." not in k}
    reason = trial.user_attrs.get("fail_reason")
    if state == "FAIL" and reason is None:
        reason = "the worker stopped (no heartbeat) before the trial ended"
    tracker.end_trial(run, state, metrics=metrics, config=_config(trial), reason=reason, hp=hp)


def _close_parent(tracker: Tracker, study: optuna.Study):
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    parent = tracker.client.get_run(tracker.parent_id)
    if running or parent.info.status != "RUNNING" or CHOICE_ATTR not in study.user_attrs:
        return
    choice = study.user_attrs[CHOICE_ATTR]
    trial = study.trials[choice["trial"]]
    best = dict(trial.user_attrs["config"])
    if choice.get("decision"):
        best["decision"] = choice["decision"]
    tracker.log_artifacts({"best_loss.json": best})
    metrics = {"best_value": choice["value"], "best_trial": choice["trial"]}
    if choice.get("baseline_value") is not None:
        metrics["baseline_value"] = choice["baseline_value"]
    tracker.log_search_metrics(metrics)
    tracker.end_search("FINISHED")
