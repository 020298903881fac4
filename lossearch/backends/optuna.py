"""The Optuna driver: a study whose trials draw loss configs from the space.

Recipes are enqueued first; each trial samples a config define-by-run through
:class:`OptunaSource`, hands it to the shared trial runner, reports the
per-epoch objective for pruning, and stores its config and metrics as trial user
attributes (so the study alone is enough to export the best loss).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from lossearch import _compat
from lossearch._processes import is_gone, this_process
from lossearch.backends.base import BaseDriver, TrialFailed, TrialHooks
from lossearch.callbacks import first_final_epoch
from lossearch.hyperparameters import HyperParameters
from lossearch.runner import TrialPruned, TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.selection.roles import recipes_in_running_order
from lossearch.settings import SearchSettings, readable_study_name
from lossearch.stopping import SearchProgress, default_stopper
from lossearch.study import state as keys
from lossearch.study.state import record_of, write_completed
from lossearch.study.storages import StudyLock, heartbeat_interval, stale_trial_callback
from lossearch.study.stored import importances_of
from lossearch.tracking.runs import Tracker, TrialRun

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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


class _OptunaHooks(TrialHooks):
    """Reports each epoch to the trial for pruning; keeps what sync-mlflow needs. A recipe
    is never pruned, whatever the pruner: the pick is judged against them. Nor is a trial
    in the epochs of each fold (of ``epochs``) before ``judged_from``, where it trains
    another loss than its own (deferred re-weighting before its start): its scores there
    are reported, not judged (docs/stopping.md, "Judging a deferred schedule")."""

    def __init__(
        self, trial: optuna.Trial, prunable: bool = True, judged_from: int = 0, epochs: int = 1
    ):
        self.trial, self.prunable = trial, prunable
        self.judged_from, self.epochs = judged_from, epochs
        self.losses: list[float | None] = []

    def started(self, run: TrialRun) -> None:
        # who runs it: a rerun on this host fails it at once should this process die
        keys.set_trial_attrs(self.trial, {keys.PROCESS: this_process()})
        if run.run_id is not None:  # lets whoever finds this trial stale close its run
            keys.set_trial_attrs(self.trial, {keys.MLFLOW_RUN: run.run_id})

    def epoch(self, step: int, value: float, logs: dict[str, float]) -> bool:
        self.trial.report(value, step)
        self.losses.append(logs.get("loss"))
        judged = step % self.epochs >= self.judged_from  # steps run on over the folds
        return self.prunable and judged and self.trial.should_prune()

    def ended(self) -> None:  # for `lossearch sync-mlflow`, should MLflow miss this trial
        keys.set_trial_attrs(self.trial, {keys.EPOCH_LOSS: self.losses})


@dataclass(frozen=True)
class Usage:
    """How much of the trial budget a study has used."""

    finished: int  # COMPLETE, PRUNED, FAIL; not a FAIL queued again (worker died) or interrupted
    running: int
    waiting: int

    @property
    def claimed(self) -> int:
        return self.finished + self.running


def _unnamed(space: SearchSpace, storage) -> str:
    """A readable name for a study the user did not name, unused in ``storage``."""
    taken = () if storage is None else optuna.get_all_study_names(storage)
    return readable_study_name(space.name, taken)


def default_sampler(
    seed: int | None, n_recipes: int, parallel: bool
) -> optuna.samplers.BaseSampler:
    """Multivariate, grouped TPE whose random start-up covers the recipes and then some."""
    n_startup = max(10, n_recipes + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True,
            group=True,  # the loss parameters are conditional on the family / scheme
            seed=seed,
            n_startup_trials=n_startup,
            constant_liar=parallel,
        )


def default_pruner() -> optuna.pruners.BasePruner:
    """Successive halving with Optuna's defaults (rungs at 1, 4, 16, ... epochs, a quarter
    promoted): the measured winner among Optuna's pruners (BENCHMARKS.md, "Pruning"),
    the unpruned pick's test quality at under a third of its epochs on every problem and
    seed. Recipes are never pruned, nor a deferred re-weighting trial before its
    re-weighting starts (see ``_OptunaHooks``)."""
    return optuna.pruners.SuccessiveHalvingPruner()


class OptunaDriver(BaseDriver):
    """An Optuna study whose trials draw loss configs from the space (recipes first)."""

    def __init__(
        self, runner: TrialRunner, space: SearchSpace, tracker: Tracker, study, settings, storage
    ):
        super().__init__(runner, space, tracker, settings.seed)
        self.study, self.settings = study, settings
        self.state = keys.OptunaStudyState(study)  # what the search keeps, read and written
        # The storage object we opened: create_study wraps it, the lock needs the original.
        self.storage = storage
        self.lock = StudyLock.for_storage(self.storage, study.study_name)
        self.stopper = default_stopper(settings.early_stop)
        self._importances: dict[str, float] | None = None  # as computed at the close
        stale = stale_trial_callback(self.storage)
        if stale is not None:
            stale.hooks.append(self._close_stale_run)

    @classmethod
    def create(
        cls,
        runner: TrialRunner,
        space: SearchSpace,
        tracker: Tracker,
        settings: SearchSettings,
        storage=None,
    ) -> OptunaDriver:
        """Open (or resume) the study in ``storage``, the Optuna storage the session opened
        (None: in memory)."""
        # The progress bar and MLflow report progress; failures get one line from the base.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        n_recipes = len(space.recipes)
        # Other threads or processes may hold running trials: let TPE lie about them.
        parallel = settings.n_jobs != 1 or storage is not None
        study = optuna.create_study(
            storage=storage,
            sampler=settings.sampler or default_sampler(settings.seed, n_recipes, parallel),
            pruner=settings.pruner or default_pruner(),
            study_name=settings.study_name or _unnamed(space, storage),
            direction=runner.objective.direction,
            load_if_exists=True,
        )
        return cls(runner, space, tracker, study, settings, storage)

    def join(self) -> None:
        """Count this worker in; the 2nd, 3rd... worker samples with a seed of its own."""
        with self.lock.claim():
            self._check_started_with()
            index = self.state.attrs.get(keys.WORKERS, 0)
            self.state.set(keys.WORKERS, index + 1)
            if index == 0:  # names the per-epoch series for `lossearch sync-mlflow`
                self.state.set(keys.OBJECTIVE, self.runner.objective.name)
        seed = self.settings.seed
        if index and self.settings.sampler is None:
            # Same seed in every worker would make their random start-up trials identical.
            self.study.sampler = default_sampler(
                None if seed is None else seed + 7919 * index, len(self.space.recipes), True
            )

    def _check_started_with(self) -> None:
        """Refuse to join a study started with another space, objective or data."""
        mine = keys.search_signature(self.space, self.runner, self.settings.seed)
        started = self.state.attrs.get(keys.STARTED_WITH)
        if started is None:
            self.state.set(keys.STARTED_WITH, mine)
            return
        differences = keys.signature_differences(started, mine)
        if differences:
            raise ValueError(
                f"study_name: study {self.study.study_name!r} was started with another "
                f"search ({'; '.join(differences)}). Its trials would not compare with this "
                "worker's: pass the same space, objective, data, epochs, batch size and seed, "
                "or another study_name."
            )

    def _fail_trials_of_dead_processes(self) -> None:
        """RUNNING trials whose worker ran on this host and has ended: failed now, and (with
        heartbeats) queued again as a stale trial is, not after the grace period."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        stale = stale_trial_callback(self.storage)
        for trial in running:
            if not is_gone(trial.user_attrs.get(keys.PROCESS)):
                continue
            if not _compat.fail_running_trial(self.study, trial):
                continue  # finished meanwhile
            if stale is not None:
                stale(self.study, self.study.get_trials(deepcopy=True)[trial.number])
            else:
                self._close_stale_run(trial)

    def _close_stale_run(self, trial: optuna.trial.FrozenTrial):
        run_id = trial.user_attrs.get(keys.MLFLOW_RUN)
        if run_id:
            self.tracker.close_run(run_id, "FAIL", "the worker stopped sending heartbeats")

    def enqueue_recipes(self, n_trials: int):
        """Queue the recipes not measured yet, as many as the trial budget leaves room for."""
        usage = self.usage()
        room = n_trials - usage.claimed - usage.waiting
        done = {
            t.user_attrs.get(keys.RECIPE)
            for t in self.study.get_trials(deepcopy=False)
            if not t.user_attrs.get(keys.INTERRUPTED)
        }
        recipes = recipes_in_running_order(
            self.space.recipes, self.runner.objective, self.runner.data.task
        )
        for recipe in [r for r in recipes if r.name not in done][: max(room, 0)]:
            self.study.enqueue_trial(
                self.space.recipe_values(recipe),
                # Not skip_if_exists: an interrupted recipe has the same params and must rerun.
                user_attrs={keys.RECIPE: recipe.name},
            )

    def usage(self) -> Usage:
        trials = self.study.get_trials(deepcopy=False)
        retried = {n for t in trials for n in _retry_history(t)}
        return Usage(
            # an interrupted trial (Ctrl-C) ran to no end: a rerun runs another in its place
            finished=sum(
                t.state in FINISHED
                and t.number not in retried
                and not t.user_attrs.get(keys.INTERRUPTED)
                for t in trials
            ),
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
        interval = heartbeat_interval(self.storage)
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            with self.lock.claim() as claim:
                self._fail_trials_of_dead_processes()
                if interval:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(self.study)
                usage = self.usage()
                if usage.claimed < n_trials:
                    if self.stop_reason() is not None:  # only while budget is left
                        return
                    self.study.optimize(
                        lambda trial: self._objective_releasing(claim, trial),
                        n_trials=1,
                        catch=(Exception,),
                        callbacks=list(self.settings.callbacks),
                    )
                    progress.update(1)
                    continue
            # Budget claimed. Without heartbeats, a trial running elsewhere will finish or
            # stay RUNNING for good: stop. With them, it may die and be queued again: wait.
            if usage.finished >= n_trials or not interval:
                return
            stop.wait(min(interval, 5))

    def search_progress(self) -> SearchProgress:
        """What a stopper sees: the completed records and the sampled trials finished."""
        trials = self.study.get_trials(deepcopy=False)
        sampled = [t for t in trials if t.state in FINISHED and keys.RECIPE not in t.user_attrs]
        # one whole training: every epoch of every fold, each reported as a step
        training = self.runner.epochs * max(1, len(self.runner.data.splits))
        return SearchProgress(
            records=self.completed_records(),
            sampled_finished=len(sampled),
            sampled_trainings=sum(len(t.intermediate_values) for t in sampled) / training,
            recipes_pending=any(
                t.state in (TrialState.WAITING, TrialState.RUNNING) and keys.RECIPE in t.user_attrs
                for t in trials
            ),
            runner=self.runner,
        )

    def _objective_releasing(self, claim, trial: optuna.Trial) -> float:
        claim.release()  # the trial exists: the budget count is settled
        return self.objective(trial)

    def objective(self, trial: optuna.Trial) -> float:
        config = self.space.sample(OptunaSource(trial), **self.runner.config_facts())
        duplicate = self._completed_twin(trial)
        if duplicate is not None:
            return self._replay(trial, duplicate, config)
        keys.set_trial_attrs(trial, {keys.CONFIG: config.to_dict()})
        recipe = trial.user_attrs.get(keys.RECIPE)
        try:
            record = self.run_trial(
                trial.number,
                config,
                OptunaHyperParameters(trial),
                recipe=recipe,
                tags={"study": self.study.study_name},
                hooks=_OptunaHooks(
                    trial,
                    prunable=recipe is None,
                    judged_from=first_final_epoch(config, self.runner.epochs),
                    epochs=self.runner.epochs,
                ),
            )
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from None
        except KeyboardInterrupt:
            keys.set_trial_attrs(trial, {keys.INTERRUPTED: True})  # a rerun queues its recipe again
            raise
        except TrialFailed as exc:
            keys.set_trial_attrs(trial, {keys.FAIL_REASON: str(exc)[:2000]})
            raise
        write_completed(trial, record)
        return record.value

    def _completed_twin(self, trial: optuna.Trial):
        """A completed trial with exactly these parameters (a model without ``hp``)."""
        for other in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.params == trial.params and keys.METRICS in other.user_attrs:
                return other
        return None

    def _replay(self, trial: optuna.Trial, twin, config) -> float:
        """Record a re-drawn config with its twin's result instead of training it again."""
        keys.set_trial_attrs(
            trial,
            {
                keys.DUPLICATE_OF: twin.number,
                keys.CONFIG: config.to_dict(),
                keys.METRICS: twin.user_attrs[keys.METRICS],
            },
        )
        run = self.tracker.start_trial(
            trial.number, config, {keys.DUPLICATE_OF: twin.number, "study": self.study.study_name}
        )
        _OptunaHooks(trial).started(run)
        self.tracker.end_trial(run, "COMPLETE", config=config, record=record_of(twin))
        return twin.value

    # -- BaseDriver ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def handle(self) -> optuna.Study:
        return self.study

    def describe(self) -> dict:
        return {
            "backend": "optuna",
            "sampler": type(self.study.sampler).__name__,
            "pruner": type(self.study.pruner).__name__,
        }

    def exclusive(self):
        return self.lock.claim()

    def complete_choice(self, n_trials: int) -> dict | None:
        usage = self.usage()
        attrs = self.state.attrs
        closed = attrs.get(keys.FINISHED_WITH) == usage.finished and keys.CHOICE in attrs
        idle = not usage.running and not usage.waiting
        done = usage.finished >= n_trials or self.stopped_early() is not None
        return attrs[keys.CHOICE] if closed and idle and done else None

    def claim_finish(self) -> bool:
        usage = self.usage()
        if usage.running or self.state.attrs.get(keys.FINISHED_WITH) == usage.finished:
            return False
        self.state.set(keys.FINISHED_WITH, usage.finished)
        return True

    def run(self, n_trials, *, timeout, n_jobs, show_progress):
        self._importances = None  # more trials: the close computes them again
        with self.lock.claim():  # two workers starting together queue the recipes once
            self.forget_an_old_stop()
            self.enqueue_recipes(n_trials)
        self.optimize(n_trials, timeout=timeout, n_jobs=n_jobs, show_progress=show_progress)

    def importances(self) -> dict[str, float]:
        if self._importances is None:
            self._importances = importances_of(self.study)
        return dict(self._importances)


def _retry_history(trial: optuna.trial.FrozenTrial) -> list[int]:
    """The trials that ``trial`` retries (a worker that died), oldest first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trial)
