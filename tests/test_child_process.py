"""Trainings in recycled child processes (``recycle_every``): the same search, in other
processes, with the sampler, pruner, MLflow and failures seen by this one."""

import os
import sys
import types

import mlflow
import optuna
import pytest

from lossearch.cli import WORKER_RECYCLE_EVERY, make_parser
from tests import child_process_model
from tests.search_helpers import digits, runs_of, tiny_search

SEARCH = {"epochs": 2, "selection": "best", "refit": False}
# Two recipes, then draws: a search that reaches sampled trials in few trainings.
SMALL_SPACE = {
    "families": {"ce": {}, "focal": {"gamma": {"type": "float", "low": 0.5, "high": 3.0}}},
    "weights": {"none": {}, "inverse": {}},
    "recipes": [
        {"name": "ce_baseline", "family": "ce"},
        {"name": "focal", "family": "focal", "params": {"gamma": 2.0}},
    ],
}


def _builds_elsewhere(folder) -> list[int]:
    """How many models each other process built (one file per process, a line per build)."""
    others = [p for p in folder.iterdir() if int(p.name) != os.getpid()]
    return sorted(len(p.read_text().splitlines()) for p in others)


def test_recycled_search_matches_the_in_process_one(mlflow_uri, experiment, tmp_path, monkeypatch):
    build = child_process_model.build_model
    here = tiny_search(
        mlflow_uri, experiment, build_model=build, data=digits(), n_trials=4, **SEARCH
    )
    monkeypatch.setenv(child_process_model.PID_FOLDER, str(tmp_path))
    away = tiny_search(
        mlflow_uri,
        experiment + "_r",
        build_model=build,
        data=digits(),
        n_trials=4,
        recycle_every=2,
        **SEARCH,
    )
    assert [t.value for t in away.study.trials] == [t.value for t in here.study.trials]
    assert [t.params["units"] for t in away.study.trials] == [
        t.params["units"] for t in here.study.trials
    ]
    assert _builds_elsewhere(tmp_path) == [2, 2]  # 4 trainings, a new process every 2
    _, _, children = runs_of(mlflow_uri, experiment + "_r")
    assert {r.data.params["hp.units"] for r in children} == {
        str(t.params["units"]) for t in away.study.trials
    }


def test_pruning_failures_and_a_dead_child_are_recorded(
    mlflow_uri, experiment, tmp_path, monkeypatch
):
    crash = tmp_path / "crash"
    crash.touch()
    monkeypatch.setenv(child_process_model.CRASH_FILE, str(crash))
    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=child_process_model.build_model,
        data=digits(),
        space=SMALL_SPACE,
        n_trials=4,
        recycle_every=3,
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),  # every sampled trial at epoch 1
        **SEARCH,
    )
    trials = result.study.trials
    states = [t.state.name for t in trials]
    assert states[0] == "FAIL"  # the child died building the first model
    assert "training process died" in trials[0].user_attrs["fail_reason"]
    recipes = [t.state.name for t in trials[1:] if "recipe" in t.user_attrs]
    assert recipes == ["COMPLETE"]  # never pruned
    assert [t.state.name for t in trials if "recipe" not in t.user_attrs] == ["PRUNED"] * 2
    _, _, children = runs_of(mlflow_uri, experiment)
    assert sorted(r.data.tags["state"] for r in children) == sorted(states)


def test_keras_tuner_trials_train_in_the_child_with_its_own_hp(
    mlflow_uri, experiment, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the tuner's project folder
    (tmp_path / "pids").mkdir()
    monkeypatch.setenv(child_process_model.PID_FOLDER, str(tmp_path / "pids"))
    tiny_search(
        mlflow_uri,
        experiment,
        build_model=child_process_model.build_model,
        data=digits(),
        n_trials=3,
        recycle_every=2,
        backend="keras_tuner",
        tuner="random",
        **SEARCH,
    )
    _, _, children = runs_of(mlflow_uri, experiment)
    assert sorted(r.data.tags["state"] for r in children) == ["COMPLETE"] * 3
    assert {r.data.params["hp.units"] for r in children} <= {"8", "16"}  # drawn by the oracle
    assert _builds_elsewhere(tmp_path / "pids") == [1, 2]


def test_a_failing_build_fails_its_trial_with_the_reason(mlflow_uri, experiment):
    with pytest.raises(RuntimeError, match="no trial completed"):
        tiny_search(
            mlflow_uri,
            experiment,
            build_model=child_process_model.build_failing,
            data=digits(),
            n_trials=2,
            recycle_every=5,
            **SEARCH,
        )
    _, _, children = runs_of(mlflow_uri, experiment)
    reasons = {r.data.tags.get("fail_reason") for r in children}
    assert reasons == {"ArithmeticError: this builder always fails"}


def test_a_builder_no_process_can_import_is_refused_before_any_trial(mlflow_uri, experiment):
    with pytest.raises(ValueError, match="recycle_every: .*pickling failed"):
        tiny_search(
            mlflow_uri,
            experiment,
            build_model=lambda hp: child_process_model.build_model(hp),
            data=digits(),
            recycle_every=2,
        )

    made_up = types.ModuleType("lossearch_made_up_module")  # importable here only
    exec(
        "from tests.child_process_model import build_model as _b\ndef build(hp):\n return _b(hp)",
        made_up.__dict__,
    )
    made_up.build.__module__ = made_up.__name__
    sys.modules[made_up.__name__] = made_up
    try:
        with pytest.raises(ValueError, match="recycle_every: a fresh process could not load"):
            tiny_search(
                mlflow_uri, experiment, build_model=made_up.build, data=digits(), recycle_every=2
            )
    finally:
        del sys.modules[made_up.__name__]
    assert mlflow.MlflowClient(mlflow_uri).get_experiment_by_name(experiment) is None  # no run


def test_tf_data_input_is_refused_before_any_trial(mlflow_uri, experiment):
    import tensorflow as tf

    x, y = digits()
    train = tf.data.Dataset.from_tensor_slices((x[:600], y[:600])).batch(64)
    val = tf.data.Dataset.from_tensor_slices((x[600:], y[600:])).batch(64)
    with pytest.raises(ValueError, match="recycle_every: .*tf.data"):
        tiny_search(
            mlflow_uri,
            experiment,
            build_model=child_process_model.build_model,
            data=(train, val),
            recycle_every=2,
        )


def test_the_worker_recycles_by_default_and_optimize_does_not():
    parser = make_parser()
    worker = parser.parse_args(["worker", "m:b", "--data", "m:d", "--storage", "s", "--study", "x"])
    assert worker.recycle_every == WORKER_RECYCLE_EVERY
    assert parser.parse_args(["optimize", "m:b", "--data", "m:d"]).recycle_every is None
