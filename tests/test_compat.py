"""Every private dependency API in lossearch/_compat.py, against the installed versions.

An upgrade that renames or changes one of them fails here, naming the use, rather than
in the middle of a search."""

import keras
import keras_tuner as kt
import mlflow
import numpy as np

from lossearch import _compat
from lossearch.backends.keras_tuner import make_oracle


def _model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def test_compile_arguments_keep_the_users_own_objects():
    model = _model()
    assert _compat.compile_arguments(model) is None  # not compiled
    metric = keras.metrics.SparseCategoricalAccuracy(name="my_accuracy")
    model.compile(
        keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        metrics=[metric],
        jit_compile=False,
    )
    arguments = _compat.compile_arguments(model)
    assert arguments["metrics"][0] is metric  # the live object, not a serialized copy
    assert arguments["jit_compile"] is False
    assert arguments["loss"] == "sparse_categorical_crossentropy"


def test_dataset_input_logs_to_a_run_without_an_active_fluent_run(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("compat")
    run = client.create_run(experiment)
    dataset = mlflow.data.from_numpy(np.zeros((5, 2)), targets=np.arange(5), name="train")
    client.log_inputs(run.info.run_id, datasets=[_compat.dataset_input(dataset, "training")])
    logged = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [d.dataset.name for d in logged] == ["train"]
    assert {t.key: t.value for t in logged[0].tags}["mlflow.data.context"] == "training"
    assert mlflow.active_run() is None


def test_recipes_first_hands_out_the_recipes_then_its_own_draws():
    recipes = [{"family": "ce"}, {"family": "focal"}, {"family": "ce"}]  # the third: a twin
    oracle = make_oracle(
        "random", recipes, objective=kt.Objective("objective", "max"), n_trials=5, epochs=1, seed=0
    )
    oracle.hyperparameters.Choice("family", ["ce", "focal", "ldam"])
    drawn = []
    for _ in range(3):
        values = oracle._random_values()
        drawn.append(values)
        oracle._tried_so_far.add(oracle._compute_values_hash(values))  # as a trial records it
    assert drawn[:2] == [{"family": "ce"}, {"family": "focal"}]
    assert oracle.pending_recipes == []  # the twin of the first recipe was skipped
    assert drawn[2] == {"family": "ldam"}  # the one value not tried yet


def test_keras_logits_are_the_input_of_a_tensorflow_softmax_and_sigmoid():
    logits = np.array([[1.0, -2.0, 0.5]], dtype="float32")
    if keras.backend.backend() != "tensorflow":
        assert _compat.keras_logits(keras.activations.softmax(logits)) is None
        return
    for activation in (keras.activations.softmax, keras.activations.sigmoid):
        attached = _compat.keras_logits(activation(keras.ops.convert_to_tensor(logits)))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(attached), logits)
    assert _compat.keras_logits(keras.ops.convert_to_tensor(logits)) is None


def test_fail_running_trial_fails_a_running_trial_once(tmp_path):
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    study.ask()
    running = study.get_trials(deepcopy=False)[0]
    assert _compat.fail_running_trial(study, running)
    assert study.get_trials(deepcopy=False)[0].state == TrialState.FAIL
    assert not _compat.fail_running_trial(study, running)  # finished already


def test_the_reading_storage_reads_what_optunas_own_storage_reads(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    study.set_user_attr("lossearch.choice", {"trial": 1})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    reading = _compat.rdb_storage_for_reading(url, {})
    assert reading._version_manager is None  # the fast path was taken: alembic not set up
    full = optuna.storages.RDBStorage(url)
    for storage in (reading, full):
        loaded = optuna.load_study(study_name="s", storage=storage)
        assert loaded.user_attrs == {"lossearch.choice": {"trial": 1}}
        assert [t.params for t in loaded.trials] == [t.params for t in study.trials]
        assert loaded.best_value == study.best_value


def test_the_reading_storage_leaves_an_older_schema_to_optuna(tmp_path):
    import sqlite3

    import optuna
    import pytest

    url = f"sqlite:///{tmp_path}/old.db"
    optuna.create_study(storage=url, study_name="s")
    with sqlite3.connect(tmp_path / "old.db") as db:  # as an older Optuna left it
        db.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    with pytest.raises(RuntimeError, match="optuna storage upgrade"):  # Optuna's own advice
        _compat.rdb_storage_for_reading(url, {})
