"""What the scale-out tests share: ``lossearch worker`` processes on this repository's code,
and the check that their trials form one study under one MLflow parent run (the fixtures
``server`` and ``pg_url`` are in conftest.py)."""

import os
import subprocess
import time
from pathlib import Path

import optuna

import lossearch
from lossearch import cli
from tests.scaleout_model import worker_command
from tests.search_helpers import runs_of

ROOT = Path(__file__).parent.parent
WORKER_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def start_worker(storage, study, server, experiment, trials, *extra, recycle=False):
    return subprocess.Popen(
        worker_command(storage, study, server.uri, experiment, trials, *extra, recycle=recycle),
        cwd=ROOT,
        env=WORKER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def work_here_beside(workers, storage, study, server, experiment, trials, *extra):
    """One more worker, in this process, once the ``lossearch worker`` processes have a trial
    running: the same command through ``cli.main``. Its TensorFlow is loaded already, ~10 s of
    CPU fewer than another process, and the study is still shared between processes."""
    _wait_for_a_trial(workers, storage, study)
    work_here(storage, study, server, experiment, trials, *extra)


def work_here(storage, study, server, experiment, trials, *extra):
    """``lossearch worker`` run by ``cli.main`` in this process (its threads as they are)."""
    argv = worker_command(storage, study, server.uri, experiment, trials, *extra, threads=None)
    assert cli.main(argv[argv.index("worker") :]) == 0


def _wait_for_a_trial(workers, storage, study, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            loaded = optuna.load_study(study_name=study, storage=lossearch.open_storage(storage))
            if loaded.get_trials(deepcopy=False):
                return
        except KeyError:  # not created yet
            pass
        for worker in workers:
            assert worker.poll() is None, worker.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no worker started a trial"
        time.sleep(0.2)


def finish(workers, timeout=300):
    for worker in workers:
        out, _ = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, out[-3000:]


def check_one_study_under_one_parent(storage, study_name, server, experiment, n_trials):
    study = optuna.load_study(study_name=study_name, storage=lossearch.open_storage(storage))
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) == n_trials == len(trials), [t.state.name for t in trials]
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert study.user_attrs["lossearch_workers"] >= 2
    _, parents, children = runs_of(server.uri, experiment)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    assert parents[0].info.status == "FINISHED"
    assert len(children) == n_trials
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(int(c.data.tags["trial_number"]) for c in children) == list(range(n_trials))
    ended = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}  # the median pruner may stop some
    assert all(c.info.status == ended[c.data.tags["state"]] for c in children)
    return study
