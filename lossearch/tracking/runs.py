"""MLflow tracking: one parent run per search, one nested child run per trial.

Child runs carry the flattened loss config as params (``loss.family``,
``loss.gamma``, ``loss.weights``, ``loss.beta``, ...), per-epoch validation
objective and loss, final metrics with per-class names (``recall.<class>``,
``f1.<class>``, ``ap.<class>``), tags (``trial_number``, ``state``) and the
``loss_config.json`` artifact, so runs compare side by side in the MLflow UI.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from lossearch import _compat
from lossearch._secrets import mask_credentials, one_line_reason
from lossearch.config import LossConfig
from lossearch.decision import Decision
from lossearch.metrics import Metrics
from lossearch.summary import SearchRun, SearchSummary

log = logging.getLogger("lossearch")
# MLflow's notes on creating and migrating a tracking database ("Creating initial MLflow
# database tables...", alembic's "Running upgrade ..."): at every first use of a store, and
# nothing a user acts on. Its warnings and errors still show.
for _chatty in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)
_PARAM_LIMIT = 6000
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit
# MLflow has no "pruned" status: a pruned trial ends KILLED (stopped early, not failed), so
# the runs table shows it apart from the completed ones; its name and `state` tag say why.
STATUS_OF_STATE = {
    "COMPLETE": "FINISHED",
    "PRUNED": "KILLED",
    "FAIL": "FAILED",
    "INTERRUPTED": "KILLED",
}


def flatten_config(config: LossConfig) -> dict[str, str]:
    """MLflow params for a loss config: ``loss.family``, ``loss.<param>``, ..."""
    params = {"loss.family": config.family, "loss.weights": config.weights}
    params.update({f"loss.{k}": v for k, v in config.params.items()})
    params.update({f"loss.{k}": v for k, v in config.weight_params.items()})
    params["loss.label_smoothing"] = config.label_smoothing
    params["loss.drw_start"] = config.drw_start
    params["loss.description"] = config.describe()
    return {k: _param_value(v) for k, v in params.items()}


def _param_value(value) -> str:
    """Text as-is, anything else as JSON: ``null``, ``true``, ``[1, 2]``, the way the
    JSON artifacts beside it spell them (never Python's ``None`` / ``True``)."""
    if isinstance(value, np.generic):
        value = value.item()
    text = value if isinstance(value, str) else json.dumps(strict_json(value), default=str)
    return text if len(text) <= _PARAM_LIMIT else text[: _PARAM_LIMIT - 3] + "..."


# MLflow reads these at each request. Its default retries back off for minutes; and on a
# server it prints "View run ... at: <tracking URI>" for each run it ends (two lines a trial,
# with the URI's password). Set once, before the first trial, and never changed afterwards:
# setenv while other threads read the environment (TensorFlow does, in fit) can crash the
# process. A value the user set is kept.
_MLFLOW_CALL_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


_offline_lock = threading.Lock()  # trial threads may lose MLflow together: warn once


def bound_mlflow_calls() -> None:
    """Bounded HTTP retries and no run-URL prints for MLflow in this process."""
    for key, value in _MLFLOW_CALL_ENV.items():
        os.environ.setdefault(key, value)


def _tolerant(method):
    """After the search has started, an MLflow failure must not stop it: warn once, go on
    without MLflow (the Optuna study keeps every result for ``lossearch sync-mlflow``)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if self.offline:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self._go_offline(exc)
            return None

    return call


@dataclass
class TrialRun:
    run_id: str | None  # None: MLflow was unreachable, nothing to log to
    epochs: list = field(default_factory=list)  # (step, {key: value}), written at the end
    number: int | None = None  # the trial's number, for the run's name
    folds: int = 1  # out-of-fold scoring trains the folds one after the other ...
    fold_epochs: int = 0  # ... this many epochs each: steps fold * fold_epochs + epoch


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


class Tracker:
    """Writes a search to MLflow. Construct it before the first trial: it fails fast
    when the tracking store cannot be reached."""

    def __init__(self, tracking_uri: str | None, experiment_name: str):
        self.mlflow = mlflow
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        self.tracking_uri = mlflow.get_tracking_uri()
        self.client = MlflowClient(self.tracking_uri)
        bound_mlflow_calls()  # before any trial thread starts
        try:
            self.experiment_id = self._experiment_id(experiment_name)
        except Exception as exc:
            raise ValueError(
                f"tracking_uri: cannot reach the MLflow tracking store at "
                f"{mask_credentials(self.tracking_uri)} ({one_line_reason(exc)}). Start the "
                "server (mlflow server ...) or pass another tracking_uri."
            ) from None
        self.parent_id: str | None = None
        self.offline = False
        self.offline_reason = ""  # why MLflow was given up on
        self.sync_hint = "lossearch sync-mlflow --storage URL --study NAME"  # open_search sets it

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            # MLflow 3's UI opens an experiment of unknown kind on its GenAI (traces) pages;
            # a loss search is model training, so its runs table should be what users see.
            return self.client.create_experiment(
                name, tags={EXPERIMENT_KIND_TAG: "custom_model_development"}
            )
        except mlflow.exceptions.MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another worker created it a moment ago.
            return self.client.get_experiment_by_name(name).experiment_id

    def _go_offline(self, exc: Exception):
        with _offline_lock:
            if self.offline:
                return
            self.offline = True
            self.offline_reason = one_line_reason(exc)
        log.warning(
            "lossearch: MLflow at %s stopped answering (%s: %s). The search goes on; its results "
            "stay in the Optuna study. When MLflow is back, run:\n  %s",
            mask_credentials(self.tracking_uri),
            type(exc).__name__,
            mask_credentials(str(exc)).splitlines()[0][:200] if str(exc) else "",
            self.sync_hint,
        )

    # -- the parent run -------------------------------------------------------------------

    def open_search(self, run: SearchRun, existing: str | None = None) -> str:
        """The search's parent run: ``existing`` reopened (a resumed search), else a new one
        with ``run``'s params and tags. Raises when MLflow cannot create it."""
        self.sync_hint = run.sync_hint
        if self._reopen(existing):
            return existing
        try:
            created = self.client.create_run(
                self.experiment_id,
                run_name=run.name,
                tags={k: mask_credentials(v) for k, v in run.tags.items()},
            )
            self.parent_id = created.info.run_id
            self.client.log_batch(self.parent_id, params=_params(run.params), synchronous=True)
        except Exception as exc:  # a read-only store, say: before any trial, so bad input
            raise ValueError(
                f"tracking_uri: MLflow at {mask_credentials(self.tracking_uri)} cannot start the "
                f"search's run ({one_line_reason(exc)}). Check that its store is writable, or "
                "pass another tracking_uri."
            ) from None
        return self.parent_id

    def _reopen(self, run_id: str | None) -> bool:
        """Log to an existing parent run; False when it is gone."""
        if not run_id:
            return False
        try:
            run = self.client.get_run(run_id)
            if run.info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
        except Exception:  # deleted, or the study was tracked in another store
            return False
        self.parent_id = run_id
        self.experiment_id = run.info.experiment_id
        return True

    def close_search(self, summary: SearchSummary, trials_frame) -> None:
        """Write what the search ended with onto its parent run and close it FINISHED:
        the artifacts (:func:`lossearch.report.parent_artifacts`), ``best_value``,
        ``best_value_std``, ``best_trial``, ``baseline_value``, ``seconds_<phase>``, the
        ``best_loss`` tag and, when the search stopped before its budget, ``stopped_early``.
        Rendering errors propagate: the caller closes it FAILED."""
        from lossearch import plots, report  # matplotlib loads only when a search closes

        self._still_answering("before the search ended")
        artifacts = report.parent_artifacts(summary, trials_frame)
        try:
            self.log_artifacts(artifacts)
        finally:
            plots.close(*(v for v in artifacts.values() if plots.is_figure(v)))
        self.log_search_metrics(search_metrics(summary))
        self.set_parent_tag("best_loss", summary.best_config.describe())
        if summary.stopped_early:
            self.set_parent_tag("stopped_early", summary.stopped_early[:5000])
        self._still_answering("while the results were written")
        self.end_search("FINISHED")

    def _still_answering(self, when: str) -> None:
        if self.offline:
            raise RuntimeError(f"MLflow stopped answering {when} ({self.offline_reason})")

    def parent_status(self) -> str:
        """The parent run's status (``RUNNING``, ``FINISHED``, ...); raises when MLflow
        cannot say."""
        return self.client.get_run(self.parent_id).info.status

    def trial_runs(self) -> dict[int, Any]:
        """The parent run's child runs by trial number (a finished one over a RUNNING one,
        should both exist); raises when MLflow cannot list them."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'",
            max_results=50000,
        )
        by_trial = {}
        for run in runs:
            number = run.data.tags.get("trial_number")
            if number is not None and (
                int(number) not in by_trial or by_trial[int(number)].info.status == "RUNNING"
            ):
                by_trial[int(number)] = run
        return by_trial

    def log_model(self, **log_model_args) -> str | None:
        """``mlflow.keras.log_model(**log_model_args)`` onto the parent run; its
        ``models:/`` URI, or None when MLflow refused it (a warning says why)."""
        if self.offline or self.parent_id is None:
            return None
        try:
            # log_model writes to the active run; the parent run is made active only for
            # this (nested when the caller has a run of its own open).
            nested = mlflow.active_run() is not None
            with mlflow.start_run(run_id=self.parent_id, nested=nested):
                return _compat.log_keras_model(**log_model_args).model_uri
        except Exception as exc:
            log.warning(
                "lossearch: the refit model could not be logged to MLflow (%s: %s); the "
                "search's results are kept. Save it with result.model.save(...) instead.",
                type(exc).__name__,
                mask_credentials(str(exc)).splitlines()[0][:300] if str(exc) else "",
            )
            return None

    @_tolerant
    def log_dataset(self, features, targets, class_counts, class_names):
        """The training data as an MLflow dataset input, with its class distribution."""
        mlflow = self.mlflow
        distribution = dict(zip(class_names, map(int, class_counts), strict=True))
        self.client.log_dict(self.parent_id, distribution, "class_distribution.json")
        # A tf.data input has no arrays to describe (MLflow would warn that it cannot infer
        # a schema); the class distribution above stands for it.
        x, y = (a if isinstance(a, np.ndarray) else None for a in (features, targets))
        if x is not None and y is not None:
            dataset = mlflow.data.from_numpy(x, targets=y, name="training")
        elif y is not None:
            dataset = mlflow.data.from_numpy(y, name="training_labels")
        else:
            return
        self.client.log_inputs(
            self.parent_id, datasets=[_compat.dataset_input(dataset, "training")]
        )

    @_tolerant
    def log_search_metrics(self, metrics: dict[str, float]):
        self.client.log_batch(self.parent_id, metrics=_metrics(metrics), synchronous=True)

    @_tolerant
    def log_artifacts(self, files: dict[str, Any]):
        """``{artifact name: text | dict | matplotlib figure}`` onto the parent run."""
        for name, content in files.items():
            if content is None:
                continue
            if isinstance(content, dict | list):  # strict JSON: no NaN or Infinity tokens
                text = json.dumps(strict_json(content), indent=2, allow_nan=False)
                self.client.log_text(self.parent_id, text, name)
            elif isinstance(content, str):
                self.client.log_text(self.parent_id, content, name)
            else:
                self.client.log_figure(self.parent_id, content, name)

    def end_search(self, status: str = "FINISHED", reason: str | None = None, quiet=False):
        """Close the parent run with ``status``, ``reason`` as its ``finish_error`` tag.

        Tried even after MLflow stopped answering (its tracking store may answer while its
        artifact store does not): every way a search ends closes its parent. A failure
        here is warned of (unless ``quiet``: MLflow's going away was said already), never
        raised."""
        if self.parent_id is None:
            return
        try:
            if reason:
                self.client.set_tag(self.parent_id, "finish_error", mask_credentials(reason)[:5000])
            self.client.set_terminated(self.parent_id, status=status)
        except Exception as exc:
            if quiet:
                return
            log.warning(
                "lossearch: the MLflow parent run %s could not be closed %s (%s); the study "
                "keeps every result. When MLflow is back, run:\n  %s",
                self.parent_id,
                status,
                one_line_reason(exc),
                self.sync_hint,
            )

    # -- child runs ------------------------------------------------------------------------

    def start_trial(self, number: int, config: LossConfig, tags: dict) -> TrialRun:
        """A child run, or a ``TrialRun`` without id once MLflow is unreachable."""
        return self._start_trial(number, config, tags) or TrialRun(None)

    @_tolerant
    def _start_trial(self, number: int, config: LossConfig, tags: dict) -> TrialRun:
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial_run_name(number, config, "RUNNING", None),
            tags={
                "mlflow.parentRunId": self.parent_id,
                "trial_number": str(number),
                "state": "RUNNING",
                **{k: str(v) for k, v in tags.items()},
            },
        )
        self.client.log_batch(
            run.info.run_id, params=_params(flatten_config(config)), synchronous=True
        )
        return TrialRun(run.info.run_id, number=number)

    @_tolerant
    def set_parent_tag(self, key: str, value: str):
        self.client.set_tag(self.parent_id, key, value)

    @_tolerant
    def close_run(self, run_id: str, state: str, reason: str):
        """Mark a run left RUNNING by a worker that died."""
        if self.client.get_run(run_id).info.status != "RUNNING":
            return
        self.client.log_batch(
            run_id, tags=_tags({"state": state, "fail_reason": reason}), synchronous=True
        )
        self.client.set_terminated(run_id, status=STATUS_OF_STATE.get(state, "FAILED"))

    def log_epoch(self, trial: TrialRun, step: int, values: dict[str, float]):
        # Buffered: one synchronous batch per trial is cheaper than MLflow's async queue,
        # whose shutdown in set_terminated costs close to a second per run.
        trial.epochs.append((step, dict(values)))

    def end_trial(
        self,
        trial: TrialRun,
        state: str,
        *,
        config: LossConfig | None = None,
        hp: dict | None = None,
        record=None,
        reason: str | None = None,
    ):
        """Close a child run: its state, the user's ``hp``, and for a completed trial its
        :class:`~lossearch.study.state.TrialRecord`'s metrics. The live search and
        ``sync-mlflow`` both end trials here, so MLflow gets the same either way."""
        if trial.run_id is not None:
            metrics = None if record is None else trial_metrics(record)
            self._end_trial(trial, state, metrics, config, reason, hp)

    @_tolerant
    def _end_trial(self, trial, state, metrics, config, reason, hp):
        tags = {"state": state}
        if config is not None:  # the runs table shows what each trial was, and how it did
            tags["mlflow.runName"] = trial_run_name(trial.number, config, state, metrics)
        if reason:
            tags["fail_reason"] = mask_credentials(reason)[:5000]
        all_metrics = epoch_metrics(trial) + _metrics(metrics or {}, step=0)
        trial.epochs = []
        for start in range(0, max(len(all_metrics), 1), MAX_METRICS_PER_BATCH):
            first = start == 0
            self.client.log_batch(
                trial.run_id,
                metrics=all_metrics[start : start + MAX_METRICS_PER_BATCH],
                params=_params({f"hp.{k}": v for k, v in (hp or {}).items()}) if first else [],
                tags=_tags(tags) if first else [],
                synchronous=True,
            )
        if config is not None:
            self.client.log_dict(trial.run_id, config.to_dict(), "loss_config.json")
        self.client.set_terminated(trial.run_id, status=STATUS_OF_STATE.get(state, "FAILED"))


def trial_run_name(number: int | None, config: LossConfig, state: str, metrics) -> str:
    """``003 focal(gamma=2) + inverse weights · 0.812``; pruned and failed trials say so."""
    loss = replace(config, decision=None).describe()
    outcome = {"PRUNED": "pruned", "FAIL": "failed", "INTERRUPTED": "interrupted"}.get(state)
    if outcome is None and metrics and "objective" in metrics:
        outcome = f"{metrics['objective']:.3f}"
    prefix = "" if number is None else f"{number:03d} "
    return f"{prefix}{loss}" + (f" · {outcome}" if outcome else "")


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (a standard error of one run, say) as None,
    so that it serializes as strict JSON, which other tools read."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def trial_metrics(record) -> dict[str, float]:
    """A completed trial's final MLflow metrics: the flattened validation metrics, the
    ``objective`` and the tuned decision (``decision.tau`` or ``decision.threshold``).

    The per-epoch series is ``val_<objective>``; the final scores keep their own names.
    A trial scored by the user's own objective (``lossearch.optuna``) has only the value.
    """
    flat = Metrics(**record.metrics).flat() if record.metrics else {}
    metrics = {**flat, "objective": record.value}
    return metrics | decision_metrics(record.decision)


def epoch_metrics(run: TrialRun) -> list:
    """A trial's per-epoch curves, one step per epoch: under out-of-fold scoring each value
    is the mean over the folds that reached that epoch, and each fold's own curve is kept as
    ``<key>.fold<k>`` (the folds train one after the other, so the raw steps would run
    through them end to end, a saw-tooth)."""
    if run.folds < 2 or run.fold_epochs < 1:
        return [m for step, values in run.epochs for m in _metrics(values, step=step)]
    by_epoch: dict[tuple[str, int], list[float]] = {}
    out = []
    for step, values in run.epochs:
        fold, epoch = divmod(step, run.fold_epochs)
        for key, value in values.items():
            if value is not None and math.isfinite(float(value)):
                by_epoch.setdefault((key, epoch), []).append(float(value))
        out += _metrics({f"{k}.fold{fold}": v for k, v in values.items()}, step=epoch)
    means = {}
    for (key, epoch), values in by_epoch.items():
        means.setdefault(epoch, {})[key] = float(np.mean(values))
    return out + [m for epoch, values in means.items() for m in _metrics(values, step=epoch)]


def search_metrics(summary: SearchSummary) -> dict[str, float]:
    """The parent run's metrics of a finished search."""
    s = summary.selection
    metrics = {"best_value": s.value, "best_value_std": s.std, "best_trial": s.chosen.number}
    if s.baseline_value is not None:
        metrics["baseline_value"] = s.baseline_value
    metrics |= {f"seconds_{phase}": value for phase, value in summary.seconds.items()}
    for who, prefix in (("pick", "test_"), ("baseline", "test_baseline_")):
        scored = (summary.test or {}).get(who) or {}
        metrics |= {f"{prefix}{k}": v for k, v in scored.get("summary", {}).items()}
    return metrics


def decision_metrics(decision: Decision | None) -> dict[str, float]:
    if decision is None:
        return {}
    if decision.kind == "logit_adjustment":
        return {"decision.tau": decision.tau}
    return {"decision.threshold": float(np.mean(decision.threshold))}


def _params(values: dict[str, Any]):
    return [
        Param(str(k), _param_value(mask_credentials(v) if isinstance(v, str) else v))
        for k, v in values.items()
    ]


def _metrics(values: dict[str, float], step: int = 0):
    now = int(time.time() * 1000)
    return [
        Metric(_metric_key(k), float(v), now, step)
        for k, v in values.items()
        if v is not None and math.isfinite(float(v))
    ]


def _metric_key(key: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space : / only.
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", key)


def _tags(values: dict[str, str]):
    return [RunTag(k, str(v)) for k, v in values.items()]
