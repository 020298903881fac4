"""The Optuna driver: a study whose trials draw loss configs from the space.

Recipes are enqueued first; each trial samples a config define-by-run through
:class:`OptunaSource`, hands it to the shared trial runner, reports the
per-epoch objective for pruning, and stores its config and metrics as trial user
attributes (so the study alone is enough to export the best loss).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from lossearch.hyperparameters import HyperParameters
from lossearch.runner import (
    LOSS_PARAM_NAMES,
    TrialPruned,
    TrialRecord,
    TrialRunner,
    run_tracked,
)
from lossearch.search_space import SearchSpace
from lossearch.storages import StudyLock, heartbeat_interval, stale_trial_callback
from lossearch.tracking import Tracker, TrialRun, mask_credentials

log = logging.getLogger("lossearch")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
PARENT_RUN_ATTR = "mlflow_parent_run_id"
CHOICE_ATTR = "lossearch_choice"  # the chosen trial, for `lossearch export`
WORKERS_ATTR = "lossearch_workers"  # how many workers have joined the study
OBJECTIVE_ATTR = "lossearch_objective"
FINISHED_ATTR = "lossearch_finished_with"  # finished trials when the search was last closed


class OptunaSource:
    """:class:`lossearch.search_space.ParamSource` over an Optuna trial."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial

    def float(self, name, low, high, *, log, step, default):
        return self.trial.suggest_float(name, low, high, log=log, step=step)

    def int(self, name, low, high, *, log, step, default):
        return self.trial.suggest_int(name, low, high, log=log, step=step)

    def categorical(self, name, choices, *, default):
        return self.trial.suggest_categorical(name, list(choices))

    def scope(self, parent, values):
        return nullcontext()  # define-by-run: a parameter exists once it is suggested


class OptunaHyperParameters(HyperParameters):
    """``hp`` for ``build_model(hp)`` backed by an Optuna trial."""

    def __init__(self, trial: optuna.Trial):
        super().__init__()
        self.trial = trial

    def _suggest_float(self, name, low, high, step, log, default):
        return self.trial.suggest_float(name, low, high, step=step, log=log)

    def _suggest_int(self, name, low, high, step, log, default):
        return self.trial.suggest_int(name, low, high, step=step, log=log)

    def _suggest_choice(self, name, values, default):
        return self.trial.suggest_categorical(name, list(values))


class _Reporter:
    def __init__(self, trial: optuna.Trial, tracker: Tracker, run: TrialRun):
        self.trial, self.tracker, self.run = trial, tracker, run
        self.losses: list[float] = []
        if run.run_id is not None:
            # Lets whoever finds this trial stale (its worker died) close the run.
            trial.set_user_attr("mlflow_run_id", run.run_id)

    def report(self, step: int, value: float, logs: dict[str, float]) -> bool:
        self.trial.report(value, step)
        self.losses.append(logs.get("loss"))
        self.tracker.log_epoch(self.run, step, logs)
        return self.trial.should_prune()


@dataclass(frozen=True)
class Usage:
    """How much of the trial budget a study has used."""

    finished: int  # COMPLETE, PRUNED, FAIL; a FAIL queued again (worker died) is not counted
    running: int
    waiting: int

    @property
    def claimed(self) -> int:
        return self.finished + self.running


def default_sampler(
    seed: int | None, n_startup: int, parallel: bool
) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True,
            group=True,  # the loss parameters are conditional on the family / scheme
            seed=seed,
            n_startup_trials=n_startup,
            constant_liar=parallel,
        )


def default_pruner(n_recipes: int, epochs: int) -> optuna.pruners.BasePruner:
    # Recipes (the CE baseline first) always finish; early epochs are too noisy to judge.
    return optuna.pruners.MedianPruner(
        n_startup_trials=max(5, n_recipes), n_warmup_steps=max(1, epochs // 3)
    )


@dataclass
class OptunaSearch:
    runner: TrialRunner
    space: SearchSpace
    tracker: Tracker
    study: optuna.Study
    seed: int | None = None
    records: dict[int, TrialRecord] = field(default_factory=dict)
    on_trial_end: Callable | None = None

    @classmethod
    def create(
        cls, runner, space, tracker, *, direction, sampler, pruner, storage, study_name, seed
    ):
        # The progress bar and MLflow report progress; failures get one line from us below.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            study_name=study_name,
            direction=direction,
            load_if_exists=True,
        )
        search = cls(runner, space, tracker, study, seed)
        search.lock = StudyLock.for_storage(study._storage, study.study_name)
        stale = stale_trial_callback(storage)
        if stale is not None:
            stale.hooks.append(search._close_stale_run)
        return search

    def join(self, seed: int | None, make_sampler: Callable[[int | None], object] | None):
        """Count this worker in; the 2nd, 3rd... worker samples with a seed of its own."""
        with self.lock.claim():
            index = self.study.user_attrs.get(WORKERS_ATTR, 0)
            self.study.set_user_attr(WORKERS_ATTR, index + 1)
            if index == 0:  # names the per-epoch series for `lossearch sync-mlflow`
                self.study.set_user_attr(OBJECTIVE_ATTR, self.runner.objective.name)
        if index and make_sampler is not None:
            # Same seed in every worker would make their random start-up trials identical.
            self.study.sampler = make_sampler(None if seed is None else seed + 7919 * index)

    def _close_stale_run(self, trial: optuna.trial.FrozenTrial):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            self.tracker.close_run(run_id, "FAIL", "the worker stopped sending heartbeats")

    def enqueue_recipes(self, n_trials: int):
        """Queue the recipes not measured yet, as many as the trial budget leaves room for."""
        usage = self.usage()
        room = n_trials - usage.claimed - usage.waiting
        done = {
            t.user_attrs.get("recipe")
            for t in self.study.get_trials(deepcopy=False)
            if not t.user_attrs.get("interrupted")
        }
        for recipe in [r for r in self.space.recipes if r.name not in done][: max(room, 0)]:
            self.study.enqueue_trial(
                self.space.recipe_values(recipe),
                # Not skip_if_exists: an interrupted recipe has the same params and must rerun.
                user_attrs={"recipe": recipe.name},
            )

    def usage(self) -> Usage:
        trials = self.study.get_trials(deepcopy=False)
        retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
        return Usage(
            finished=sum(t.state in FINISHED and t.number not in retried for t in trials),
            running=sum(t.state == TrialState.RUNNING for t in trials),
            waiting=sum(t.state == TrialState.WAITING for t in trials),
        )

    def optimize(self, n_trials: int, *, timeout=None, n_jobs=1, show_progress=True):
        """Run trials until the study holds ``n_trials`` finished ones, in any number of
        threads here and workers elsewhere; each trial is created under the study lock."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stop = threading.Event()
        progress = tqdm(
            total=n_trials,
            initial=min(self.usage().finished, n_trials),
            desc=self.study.study_name,
            unit="trial",
            disable=not show_progress,
        )
        try:
            if n_jobs == 1:
                self._work(n_trials, deadline, stop, progress)
                return
            n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
            with ThreadPoolExecutor(n_jobs, thread_name_prefix="lossearch") as pool:
                futures = [
                    pool.submit(self._work, n_trials, deadline, stop, progress)
                    for _ in range(n_jobs)
                ]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()  # the other threads end after their current trial
                    raise
        finally:
            progress.close()

    def _work(self, n_trials, deadline, stop: threading.Event, progress):
        interval = heartbeat_interval(self.study._storage)
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            with self.lock.claim() as claim:
                if interval:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(self.study)
                usage = self.usage()
                if usage.claimed < n_trials:
                    self.study.optimize(
                        lambda trial: self._objective_releasing(claim, trial),
                        n_trials=1,
                        catch=(Exception,),
                    )
                    progress.update(1)
                    continue
            # Budget claimed. Without heartbeats, a trial running elsewhere will finish or
            # stay RUNNING for good: stop. With them, it may die and be queued again: wait.
            if usage.finished >= n_trials or not interval:
                return
            stop.wait(min(interval, 5))

    def _objective_releasing(self, claim, trial: optuna.Trial) -> float:
        claim.release()  # the trial exists: the budget count is settled
        return self.objective(trial)

    def objective(self, trial: optuna.Trial) -> float:
        config = self.space.sample(OptunaSource(trial), **self.runner.config_facts())
        duplicate = self._completed_twin(trial)
        if duplicate is not None:
            return self._replay(trial, duplicate, config)
        hp = OptunaHyperParameters(trial)
        trial.set_user_attr("config", config.to_dict())
        reporters = []

        def reporter_for(run):
            reporters.append(_Reporter(trial, self.tracker, run))
            return reporters[-1]

        try:
            record = run_tracked(
                self.runner,
                self.tracker,
                number=trial.number,
                config=config,
                hp=hp,
                recipe=trial.user_attrs.get("recipe"),
                tags={"study": self.study.study_name},
                seed=None if self.seed is None else self.seed + trial.number,
                reporter_for=reporter_for,
            )
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from None
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # a rerun queues its recipe again
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", mask_credentials(reason)[:2000])
            log.warning(
                "lossearch: trial %d failed (%s); the search goes on.", trial.number, reason
            )
            raise
        finally:
            if reporters:  # for `lossearch sync-mlflow`, should MLflow miss this trial
                trial.set_user_attr("epoch_loss", reporters[0].losses)
        trial.set_user_attr("metrics", record.metrics)
        trial.set_user_attr("epochs_trained", record.epochs_trained)
        if record.decision is not None:
            trial.set_user_attr("decision", record.decision.to_dict())
        self.records[trial.number] = record
        return record.value

    def _completed_twin(self, trial: optuna.Trial):
        """A completed trial with exactly these parameters (a model without ``hp``)."""
        for other in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.params == trial.params and "metrics" in other.user_attrs:
                return other
        return None

    def _replay(self, trial: optuna.Trial, twin, config) -> float:
        """Record a re-drawn config with its twin's result instead of training it again."""
        from lossearch.metrics import Metrics

        trial.set_user_attr("duplicate_of", twin.number)
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("metrics", twin.user_attrs["metrics"])
        run = self.tracker.start_trial(
            trial.number, config, {"duplicate_of": twin.number, "study": self.study.study_name}
        )
        if run.run_id is not None:
            trial.set_user_attr("mlflow_run_id", run.run_id)
        metrics = Metrics(**twin.user_attrs["metrics"]).flat()
        metrics["objective"] = twin.value
        self.tracker.end_trial(run, "COMPLETE", metrics=metrics, config=config)
        return twin.value

    # -- what optimize() needs from any driver -------------------------------------------

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def handle(self):
        """What ``SearchResult.study`` exposes: the Optuna study."""
        return self.study

    def describe(self) -> dict:
        return {
            "backend": "optuna",
            "sampler": type(self.study.sampler).__name__,
            "pruner": type(self.study.pruner).__name__,
        }

    def saved_parent_run(self) -> str | None:
        return self.study.user_attrs.get(PARENT_RUN_ATTR)

    def save_parent_run(self, run_id: str):
        self.study.set_user_attr(PARENT_RUN_ATTR, run_id)

    def exclusive(self):
        """Held while a worker creates or closes the shared MLflow parent run."""
        return self.lock.claim()

    def claim_finish(self) -> bool:
        """True for the one worker that closes the search: no trial runs elsewhere and no
        other worker has closed it at this trial count. Call under :meth:`exclusive`."""
        usage = self.usage()
        if usage.running or self.study.user_attrs.get(FINISHED_ATTR) == usage.finished:
            return False
        self.study.set_user_attr(FINISHED_ATTR, usage.finished)
        return True

    def remember_choice(self, choice: dict):
        self.study.set_user_attr(CHOICE_ATTR, choice)

    def run(self, n_trials, *, timeout, n_jobs, show_progress):
        with self.lock.claim():  # two workers starting together queue the recipes once
            self.enqueue_recipes(n_trials)
        self.optimize(n_trials, timeout=timeout, n_jobs=n_jobs, show_progress=show_progress)

    def completed_records(self) -> list[TrialRecord]:
        """Completed trials: from memory when this process ran them, else from the study."""
        from lossearch.config import LossConfig

        records = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "duplicate_of" in trial.user_attrs:
                continue  # its twin is the measurement
            record = self.records.get(trial.number)
            if record is None:
                hp_values = {
                    k: v
                    for k, v in trial.params.items()
                    if k not in LOSS_PARAM_NAMES and "." not in k
                }
                record = TrialRecord(
                    trial.number,
                    trial.value,
                    LossConfig.from_dict(trial.user_attrs["config"]),
                    hp_values,
                    trial.user_attrs.get("recipe"),
                    epochs_trained=trial.user_attrs.get("epochs_trained", 0),
                    decision=stored_decision(trial),
                )
            record.metrics = trial.user_attrs.get("metrics", {})
            records.append(record)
        return records

    def trial_states(self) -> list[tuple[int, str, float | None]]:
        return [(t.number, t.state.name, t.value) for t in self.study.get_trials(deepcopy=False)]

    def failure_reasons(self) -> list[str]:
        return [
            t.user_attrs["fail_reason"] for t in self.study.trials if "fail_reason" in t.user_attrs
        ]

    def trials_dataframe(self):
        frame = self.study.trials_dataframe(
            attrs=("number", "state", "value", "params", "duration", "user_attrs")
        )
        drop = [
            c
            for c in frame.columns
            if c in ("user_attrs_config", "user_attrs_metrics", "user_attrs_decision")
        ]
        return frame.drop(columns=drop)

    def importances(self) -> dict[str, float]:
        return importances_of(self.study)


def stored_decision(trial):
    from lossearch.decision import Decision

    data = trial.user_attrs.get("decision")
    return None if data is None else Decision.from_dict(data)


def importances_of(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA), or ``{}`` where it has too little to go on."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "few trials per regime" on small studies
            return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # too few trials or no varying parameter
        return {}
