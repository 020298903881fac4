"""Many workers on one study, and MLflow going away: real processes, real servers (workers
that stop or are killed: tests/test_worker_failures.py).

Workers are ``lossearch worker`` processes on a real storage (PostgreSQL, SQLite,
Optuna's JournalStorage on a file or on Redis) logging to a real ``mlflow server``
on loopback.
"""

import dataclasses
import os
import uuid

import mlflow
import pytest

import lossearch
from lossearch import cli
from tests.search_helpers import FAST, dense_model, digits, runs_of
from tests.workers import (
    ROOT,
    check_one_study_under_one_parent,
    finish,
    start_worker,
    work_here_beside,
)

pytestmark = pytest.mark.slow


def test_four_workers_share_one_postgresql_study(pg_url, server, experiment, tmp_path):
    run = (pg_url, "pg", server, experiment, 8, "--epochs", "1")
    workers = [start_worker(*run) for _ in range(3)]
    work_here_beside(workers, *run)  # the fourth
    finish(workers)
    study = check_one_study_under_one_parent(pg_url, "pg", server, experiment, 8)
    # `lossearch export` returns the best (chosen) trial's loss, told the class counts of all
    # the data (the trial's were its training split's)
    out = tmp_path / "best.json"
    assert cli.main(["export", "--storage", pg_url, "--study", "pg", "-o", str(out)]) == 0
    best = lossearch.load_loss(str(out))
    choice = study.user_attrs["lossearch_choice"]
    assert choice["trial"] == study.best_trial.number  # --selection best
    trial = lossearch.LossConfig.from_dict(study.best_trial.user_attrs["config"])
    assert sum(choice["data_facts"]["class_counts"]) > sum(trial.class_counts)
    told = dataclasses.replace(trial, **choice["data_facts"])
    assert best.get_config() == lossearch.build_loss(told).get_config()


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
    run = (storage, study, server, experiment, 4, "--epochs", "1")
    workers = [start_worker(*run)]
    work_here_beside(workers, *run)  # the second
    finish(workers)
    check_one_study_under_one_parent(storage, study, server, experiment, 4)


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
