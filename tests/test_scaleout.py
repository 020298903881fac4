"""Many workers on one study, crashes, and MLflow going away: real processes, real servers.

Workers are ``lossearch worker`` processes on a real storage (PostgreSQL, SQLite,
Optuna's JournalStorage on a file or on Redis) logging to a real ``mlflow server``
on loopback.
"""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest

import lossearch
from lossearch import cli
from tests.mlflow_server import MlflowServer
from tests.scaleout_model import worker_command
from tests.search_helpers import FAST, dense_model, digits, runs_of

ROOT = Path(__file__).parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
WORKER_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real MLflow tracking server for the module."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as running:
        yield running


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database per test (the server is started by .ci/run)."""
    import psycopg

    name = f"lossearch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def start_worker(storage, study, server, experiment, trials, *extra, recycle=False):
    return subprocess.Popen(
        worker_command(storage, study, server.uri, experiment, trials, *extra, recycle=recycle),
        cwd=ROOT,
        env=WORKER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


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


def test_four_workers_share_one_postgresql_study(pg_url, server, experiment, tmp_path):
    workers = [start_worker(pg_url, "pg", server, experiment, 8, "--epochs", "1") for _ in range(4)]
    finish(workers)
    study = check_one_study_under_one_parent(pg_url, "pg", server, experiment, 8)
    # `lossearch export` returns the best (chosen) trial's loss.
    out = tmp_path / "best.json"
    assert cli.main(["export", "--storage", pg_url, "--study", "pg", "-o", str(out)]) == 0
    best = lossearch.load_loss(str(out))
    chosen = study.user_attrs["lossearch_choice"]["trial"]
    assert chosen == study.best_trial.number  # --selection best
    assert (
        best.get_config()
        == lossearch.build_loss(
            lossearch.LossConfig.from_dict(study.best_trial.user_attrs["config"])
        ).get_config()
    )


def _journal(tmp_path):
    return f"journal:///{os.path.relpath(tmp_path / 'study.log', ROOT)}"


def _redis(tmp_path):
    import redis

    url = "redis://127.0.0.1:6379/15"  # a database of its own, emptied: the journal replays all
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.mark.parametrize(
    "storage_of",
    [lambda p: f"sqlite:///{p}/study.db", _journal, _redis],
    ids=["sqlite", "journal-file", "journal-redis"],
)
def test_two_workers_share_one_study(storage_of, server, experiment, tmp_path):
    storage, study = storage_of(tmp_path), f"two-{uuid.uuid4().hex[:8]}"
    workers = [
        start_worker(storage, study, server, experiment, 4, "--epochs", "1") for _ in range(2)
    ]
    finish(workers)
    check_one_study_under_one_parent(storage, study, server, experiment, 4)


def test_a_worker_stopped_by_its_timeout_is_resumed_by_the_next(server, experiment, tmp_path):
    # Bounded workers restarted in turn: how a long search sheds what TensorFlow keeps.
    storage, study = f"sqlite:///{tmp_path}/study.db", "bounded"
    finish([start_worker(storage, study, server, experiment, 4, "--epochs", "1", "--timeout", "1")])
    loaded = optuna.load_study(study_name=study, storage=lossearch.open_storage(storage))
    assert 1 <= sum(t.state.is_finished() for t in loaded.get_trials()) < 4
    finish([start_worker(storage, study, server, experiment, 4, "--epochs", "1")])
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
    storage = f"sqlite:///{tmp_path}/crash.db"
    args = ("--epochs", "30", "--heartbeat-interval", "1", "--grace-period", "3")
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

    finish([start_worker(storage, "crash", server, experiment, 3, *args)])

    study = optuna.load_study(study_name="crash", storage=storage)
    states = {t.number: t for t in study.trials}
    assert states[killed].state.name == "FAIL"
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


class StopServerAfterSecondTrial:
    """A Keras callback: the MLflow server goes away after the 2nd trial has trained."""

    def __init__(self, server):
        import keras

        class Callback(keras.callbacks.Callback):
            fits = 0

            def on_train_end(inner, logs=None):  # noqa: N805 - keras callback
                type(inner).fits += 1
                if type(inner).fits == 2:
                    server.stop()

        self.callback = Callback()


def test_mlflow_dropping_mid_search_then_sync_mlflow(server, experiment, tmp_path, caplog):
    storage = f"sqlite:///{tmp_path}/drop.db"
    x, y = digits()
    result = lossearch.optimize(
        dense_model(64, 10),
        (x, y),
        space="quick",
        n_trials=5,
        storage=storage,
        study_name="drop",
        selection="best",
        refit=False,
        tracking_uri=server.uri,
        experiment_name=experiment,
        fit_kwargs={"callbacks": [StopServerAfterSecondTrial(server).callback]},
        **FAST,
    )
    # The search completed; the results are in the study.
    trials = result.study.trials
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    assert all("metrics" in t.user_attrs for t in trials)
    warnings = [r for r in caplog.records if "stopped answering" in r.getMessage()]
    assert len(warnings) == 1 and "lossearch sync-mlflow" in warnings[0].getMessage()

    server.start()
    _, _, children = runs_of(server.uri, experiment)
    assert len(children) < 5  # MLflow missed trials
    out = cli.main(
        ["sync-mlflow", "--storage", storage, "--study", "drop", "--tracking-uri", server.uri]
    )
    assert out == 0
    _, parents, children = runs_of(server.uri, experiment)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # The parent gets what the search would have written: its artifacts and metrics.
    client = mlflow.MlflowClient(server.uri)
    listed = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"best_loss.json", "trials.csv", "selection.json", "report.html", "plots"} <= listed
    assert {"best_value", "best_trial"} <= set(parents[0].data.metrics)
    by_trial = {}
    for child in children:
        by_trial.setdefault(int(child.data.tags["trial_number"]), []).append(child)
    assert sorted(by_trial) == [0, 1, 2, 3, 4] and all(len(r) == 1 for r in by_trial.values())
    for number, (run,) in by_trial.items():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["objective"] == pytest.approx(trials[number].value)
        assert run.data.params["loss.family"] == trials[number].user_attrs["config"]["family"]
    # A second sync finds nothing to do.
    report = lossearch.sync_mlflow(storage, "drop", tracking_uri=server.uri)
    assert report.created == [] and report.completed == [] and report.skipped == 5
