"""Workers that stop: one ended by its timeout and resumed by the next, one killed mid-trial
whose trial is failed and retried with nothing lost. Real ``lossearch worker`` processes on
SQLite, logging to a real ``mlflow server`` (a file of its own, so that pytest-xdist runs it
beside tests/test_scaleout.py)."""

import datetime
import signal
import time
from pathlib import Path

import mlflow
import optuna
import pytest

import lossearch
from tests.workers import check_one_study_under_one_parent, finish, start_worker, work_here

pytestmark = pytest.mark.slow


def test_a_worker_stopped_by_its_timeout_is_resumed_by_the_next(server, experiment, tmp_path):
    # Bounded workers restarted in turn: how a long search sheds what TensorFlow keeps.
    storage, study = f"sqlite:///{tmp_path}/study.db", "bounded"
    finish([start_worker(storage, study, server, experiment, 4, "--epochs", "1", "--timeout", "1")])
    loaded = optuna.load_study(study_name=study, storage=lossearch.open_storage(storage))
    assert 1 <= sum(t.state.is_finished() for t in loaded.get_trials()) < 4
    work_here(storage, study, server, experiment, 4, "--epochs", "1")  # the next worker
    check_one_study_under_one_parent(storage, study, server, experiment, 4)


def _running_trial(storage, study_name):
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name == "RUNNING" and len(trial.intermediate_values) >= 2:
            return trial
    return None


def test_a_killed_worker_leaves_a_failed_retried_trial_and_nothing_lost(
    server, experiment, tmp_path
):
    """The next worker, on the same host, fails and retries the killed trial at once: on
    main it waited out the heartbeat's grace period (here 60 s; by default 120 s)."""
    storage = f"sqlite:///{tmp_path}/crash.db"
    args = ("--epochs", "30", "--heartbeat-interval", "30", "--grace-period", "60")
    # The worker's default: its trials train in a child process, which dies with it.
    victim = start_worker(storage, "crash", server, experiment, 3, *args, recycle=True)
    deadline = time.monotonic() + 180
    while (trial := _running_trial(storage, "crash")) is None or trial.number == 0:
        assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read()
        time.sleep(0.2)
    trainers = _children(victim.pid)
    assert trainers
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    _wait_gone(trainers)
    killed = trial.number
    client = mlflow.MlflowClient(server.uri)
    before = optuna.load_study(study_name="crash", storage=storage).trials[0]
    assert before.state.name == "COMPLETE"
    assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "RUNNING"

    rerun = datetime.datetime.now()
    work_here(storage, "crash", server, experiment, 3, *args)  # the next worker

    study = optuna.load_study(study_name="crash", storage=storage)
    states = {t.number: t for t in study.trials}
    assert states[killed].state.name == "FAIL"
    assert (states[killed].datetime_complete - rerun).total_seconds() < 20  # not the grace
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == states[killed].params
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(completed) == 3  # the budget: the failed-and-retried trial does not count
    # Earlier work intact: same value, same config, its child run finished.
    assert states[0].value == before.value and states[0].params == before.params
    assert client.get_run(before.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
    killed_run = client.get_run(states[killed].user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "FAILED" and killed_run.data.tags["state"] == "FAIL"


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def _alive(pid: int) -> bool:
    try:  # a zombie (state Z) has exited; no one may have reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"training processes {pids} outlived their worker"
        time.sleep(0.1)
