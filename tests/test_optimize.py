"""Real end-to-end searches on tiny data."""

import json
import re
from pathlib import Path

import keras
import mlflow
import numpy as np
import optuna
import pytest
from sklearn.metrics import balanced_accuracy_score

import lossearch
from lossearch import LossConfig
from tests.search_helpers import (
    FAST,
    QUICK_RECIPES,
    dense_model,
    digits,
    ml_digits,
    onehot,
    runs_of,
    small_fraud,
    tiny_search,
)


@pytest.mark.slow
def test_multiclass_sparse_end_to_end(tmp_path, mlflow_uri, experiment):
    x, y = digits()
    storage = f"sqlite:///{tmp_path}/study.db"
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        n_trials=8,
        storage=storage,
        study_name="sparse",
        confirm_seeds=1,
        test_data=(x[::3], [str(label) for label in y[::3]]),  # text labels: mapped by name
    )
    trials = result.study.trials
    # recipes are the first trials, in order
    assert [t.user_attrs.get("recipe") for t in trials[:6]] == QUICK_RECIPES
    assert len(trials) == 8
    assert trials[1].params == {"family": "ce", "weights": "none"}
    # the CE baseline is measured and reported
    assert result.baseline_metrics["per_class"]["0"]["support"] > 0
    assert set(result.best_metrics["per_class"]) == {str(c) for c in range(10)}
    # the exported loss is told all the data's counts (what result.model was refit on), the
    # trials their training split's
    assert result.best_config.class_counts == tuple(np.bincount(y, minlength=10))
    assert sum(result.class_counts) < len(y)
    assert result.model is not None and result.model.output_shape == (None, 10)
    # the decision rule: tuned, exported, applied by result.model, kept in the study
    rule = result.best_config.decision
    assert rule.kind == "logit_adjustment" and 0.0 <= rule.tau <= 2.0
    logits = result.trained_model.predict(x[:50], verbose=0)
    expected = rule.apply(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    assert np.allclose(result.model.predict(x[:50], verbose=0), expected, atol=1e-5)
    assert lossearch.api.load_best_config(storage, "sparse") == result.best_config
    # the CE baseline is measured like the pick: the same confirmation runs
    assert result.selection.baseline_runs == result.selection.runs == 2
    roles = {row["role"] for row in result.selection.table}
    assert {"incumbent", "baseline"} <= roles
    # MLflow: one parent, one child per trial with loss params, metrics and tags
    client, parents, children = runs_of(mlflow_uri, experiment)
    assert len(parents) == 1 and parents[0].info.run_id == result.mlflow_run_id
    assert len(children) == 8
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {result.mlflow_run_id}
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    assert sorted(by_number) == list(range(8))
    first = by_number[1].data  # the CE baseline, after the incumbent
    assert first.params["loss.family"] == "ce" and first.params["loss.weights"] == "none"
    assert first.tags["state"] == "COMPLETE" and by_number[1].info.status == "FINISHED"
    assert {"decision.tau", "recall.9", "f1.9", "ap.9", "val_balanced_accuracy"} <= set(
        first.metrics
    )
    history = client.get_metric_history(by_number[1].info.run_id, "val_balanced_accuracy")
    assert [m.step for m in history] == [0, 1, 2]
    focal = by_number[4].data.params
    assert focal["loss.family"] == "focal" and float(focal["loss.gamma"]) == 2.0
    parent = parents[0].data
    assert parent.params["space"] == "quick" and parent.params["task"] == "multiclass"
    assert parent.params["objective"] == "balanced_accuracy"
    assert parent.params["n_trials"] == "8" and parent.params["epochs"] == "3"
    assert json.loads(parent.params["class_counts"])["9"] >= 1
    # where the time went, per phase, in the result and on the parent run
    assert set(result.seconds) == {"search", "confirmation", "refit"}
    assert all(value > 0 for value in result.seconds.values())
    assert {f"seconds_{k}": v for k, v in result.seconds.items()}.items() <= parent.metrics.items()
    # Params spell absent values and flags the way the JSON artifacts do, one way only.
    every_param = [v for run in [*parents, *children] for v in run.data.params.values()]
    assert not {"None", "True", "False"} & set(every_param)
    assert first.params["loss.drw_start"] == "null" and parent.params["decision"] == "true"
    artifacts = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"best_loss.json", "trials.csv", "plots", "summary.txt"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.mlflow_run_id, "plots")}
    assert "plots/per_class_recall.png" in plots and "plots/confusion_matrix.png" in plots
    assert parents[0].inputs.dataset_inputs  # the training data as an MLflow dataset
    folder = Path(client.download_artifacts(result.mlflow_run_id, "", str(tmp_path / "art")))
    for artifact in folder.rglob("*.json"):  # strict JSON, readable by any tool: no NaN
        assert not re.search(r"\b(NaN|-?Infinity)\b", artifact.read_text()), artifact
        json.loads(artifact.read_text())
    # exported JSON rebuilds an identical loss
    path = tmp_path / "best_loss.json"
    result.export(path)
    rebuilt = lossearch.load_loss(path)
    logits = np.random.default_rng(0).normal(size=(32, 10)).astype("float32")
    labels = y[:32]
    assert float(rebuilt(labels, logits)) == float(result.best_config.build()(labels, logits))
    assert "pick:" in result.summary() and "recall(CE)" in result.summary()
    assert "time:      search " in result.summary()
    # test data: the refit pick through its decision layer, scored once
    tested = result.test_metrics["pick"]["summary"]["balanced_accuracy"]
    decided = result.model.predict(x[::3], verbose=0).argmax(-1)
    assert tested == pytest.approx(balanced_accuracy_score(y[::3], decided))
    assert parent.metrics["test_balanced_accuracy"] == pytest.approx(tested)


@pytest.mark.slow
def test_multiclass_onehot_keeps_the_users_optimizer_and_metrics(mlflow_uri, experiment):
    x, y = digits()

    def build_model():
        model = dense_model(64, 10, activation="softmax")()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["accuracy"])
        return model

    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=build_model,
        data=(x, onehot(y, 10)),
        n_trials=3,
        selection="best",
    )
    assert result.best_config.from_logits is False  # softmax output detected
    trained = result.trained_model  # result.model adds the decision layer on top of it
    assert isinstance(trained.optimizer, keras.optimizers.SGD)
    assert isinstance(trained.loss, lossearch.losses.LossearchLoss)
    assert "compile_metrics" in [m.name for m in trained.metrics]


@pytest.mark.slow
def test_binary_end_to_end_defaults_to_minority_pr_auc(mlflow_uri, experiment):
    x, y = small_fraud()
    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=dense_model(20, 1, activation="sigmoid"),
        data=(x, y),
        space="default",
        n_trials=7,
        confirm_seeds=1,
        log_model=False,
    )
    assert result.model is not None and result.model_uri is None  # refit, not logged
    assert result.objective == "pr_auc"
    assert result.best_config.task == "binary" and result.best_config.from_logits is False
    assert result.best_config.class_counts[1] < result.best_config.class_counts[0]
    recipes = [t.user_attrs.get("recipe") for t in result.study.trials[:6]]
    assert recipes == [
        "ce_baseline",
        "inverse_weighted_ce",
        "effective_number_ce",
        "logit_adjusted",
        "focal",
        "balanced_pos_weight",
    ]
    _, parents, children = runs_of(mlflow_uri, experiment)
    assert len(parents) == 1 and len(children) == 7
    assert "model_uri" not in parents[0].data.tags


@pytest.mark.slow
def test_multilabel_end_to_end(mlflow_uri, experiment):
    x, y = ml_digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=dense_model(64, 3),
        data=(x, y),
        space="default",
        n_trials=6,
        selection="best",
        class_names=["even", "big", "zero"],
    )
    assert result.best_config.task == "multilabel"
    assert result.objective == "macro_pr_auc"
    assert set(result.best_metrics["per_class"]) == {"even", "big", "zero"}
    assert result.best_config.n_samples is not None


class PruneOddTrials(optuna.pruners.BasePruner):
    """A real Optuna pruner that prunes every odd-numbered trial after its first epoch."""

    def prune(self, study, trial):
        step = trial.last_step
        return trial.number % 2 == 1 and step is not None and step >= 1


@pytest.mark.slow
def test_pruned_and_nan_trials_are_recorded_and_the_study_goes_on(tmp_path, mlflow_uri, experiment):
    x, y = digits()
    storage = f"sqlite:///{tmp_path}/nan.db"

    def build_model(hp):
        lr = hp.Choice("lr", [1e-3, 1e12])  # 1e12 makes SGD diverge to NaN
        model = dense_model(64, 10)()
        model.compile(optimizer=keras.optimizers.SGD(lr))
        return model

    study = optuna.create_study(storage=storage, study_name="nan", direction="maximize")
    study.enqueue_trial({"family": "ce", "weights": "none", "lr": 1e12})
    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=build_model,
        data=(x, y),
        n_trials=6,
        storage=storage,
        study_name="nan",
        pruner=PruneOddTrials(),
        selection="best",
        space={  # one recipe (never pruned), then draws
            "families": {"ce": {}, "focal": {"gamma": {"type": "float", "low": 1, "high": 3}}},
            "weights": {"none": {}, "inverse": {}, "effective_number": {}},
            "recipes": [{"name": "ce_baseline", "family": "ce"}],
        },
    )
    trials = result.study.trials
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert "NaN" in trials[0].user_attrs["fail_reason"]
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and "COMPLETE" in states and "PRUNED" in states
    assert trials[1].user_attrs["recipe"] == "ce_baseline" and states[1] != "PRUNED"
    # every odd draw that trained without diverging was pruned, every even one completed
    assert all(s == "PRUNED" for s in states[3::2] if s != "FAIL")
    assert all(s == "COMPLETE" for s in states[2::2] if s != "FAIL")
    diverged = [t for t in trials if t.state.name == "FAIL"]
    assert all(t.params["lr"] == 1e12 for t in diverged)
    _, _, children = runs_of(mlflow_uri, experiment)
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    assert by_number[0].info.status == "FAILED" and "NaN" in by_number[0].data.tags["fail_reason"]
    pruned = [c for c in children if c.data.tags["state"] == "PRUNED"]
    assert pruned and all(c.info.status == "KILLED" for c in pruned)  # not a green check


@pytest.mark.slow
def test_rerun_with_the_same_study_name_resumes(tmp_path, mlflow_uri, experiment, monkeypatch):
    monkeypatch.chdir(tmp_path)  # study_name alone -> sqlite:///lossearch.db here
    x, y = digits()
    kwargs = dict(
        space="quick",
        study_name="resume",
        selection="best",
        refit=False,
        tracking_uri=mlflow_uri,
        experiment_name=experiment,
        **FAST,
    )
    first = lossearch.optimize(dense_model(64, 10), (x, y), n_trials=3, **kwargs)
    values = [t.value for t in first.study.trials]
    assert (tmp_path / "lossearch.db").exists()
    second = lossearch.optimize(dense_model(64, 10), (x, y), n_trials=5, **kwargs)
    trials = second.study.trials
    assert len(trials) == 5
    assert [t.value for t in trials[:3]] == values  # nothing recomputed or lost
    assert [t.user_attrs.get("recipe") for t in trials] == QUICK_RECIPES[:5]
    assert second.mlflow_run_id == first.mlflow_run_id
    _, parents, children = runs_of(mlflow_uri, experiment)
    assert len(parents) == 1 and len(children) == 5


@pytest.mark.slow
def test_build_model_hp_tunes_the_learning_rate_with_the_loss(mlflow_uri, experiment):
    x, y = digits()
    seen = []

    def build_model(hp):
        lr = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        units = hp.Int("units", 8, 32, step=8)
        seen.append((lr, units))
        model = dense_model(64, 10, hidden=units)()
        model.compile(optimizer=keras.optimizers.Adam(lr))
        return model

    result = tiny_search(
        mlflow_uri, experiment, build_model=build_model, data=(x, y), n_trials=8, confirm_seeds=1
    )
    trials = result.study.trials
    assert all("learning_rate" in t.params and "units" in t.params for t in trials)
    assert len({t.params["learning_rate"] for t in trials}) > 1
    assert len({lr for lr, _ in seen}) > 2
    _, _, children = runs_of(mlflow_uri, experiment)
    assert all("hp.learning_rate" in c.data.params for c in children)
    chosen = trials[result.best_trial_number].params["learning_rate"]
    assert result.trained_model.optimizer.learning_rate.numpy() == pytest.approx(chosen, rel=1e-5)
    best_params = trials[result.best_trial_number].params
    assert result.best_hp == {k: best_params[k] for k in ("learning_rate", "units")}
    assert f"units={best_params['units']}" in result.summary()


@pytest.mark.slow
def test_cross_validation_scores_out_of_fold(mlflow_uri, experiment):
    x, y = digits(imbalance=5)
    result = tiny_search(
        mlflow_uri, experiment, data=(x, y), n_trials=2, selection="best", refit=False, cv=3
    )
    support = sum(v["support"] for v in result.best_metrics["per_class"].values())
    assert support == len(y)  # every sample is scored once, out of fold
    assert result.study.trials[0].user_attrs["epochs_trained"] == 3 * FAST["epochs"]


@pytest.mark.slow
def test_cv_auto_scores_out_of_fold_when_the_tail_is_tiny_and_says_so(mlflow_uri, experiment):
    x, y = digits(imbalance=20)  # digit 9 keeps 9 samples: 2 in a 20% hold-out
    result = tiny_search(
        mlflow_uri, experiment, data=(x, y), n_trials=2, selection="best", refit=False, cv="auto"
    )
    assert result.study.trials[0].user_attrs["epochs_trained"] == 3 * FAST["epochs"]
    assert "cv=3, chosen automatically" in result.summary()
    assert sum(result.validation_counts) == len(y)


@pytest.mark.slow
def test_tf_data_datasets_and_explicit_validation(mlflow_uri, experiment, capfd):
    import tensorflow as tf

    x, y = digits()
    cut = int(0.8 * len(y))
    order = np.argsort(np.arange(len(y)) % 5 == 0, kind="stable")  # keep every class both sides
    x, y = x[order], y[order]
    cut = len(y) - len(y) // 5
    train = tf.data.Dataset.from_tensor_slices((x[:cut], y[:cut])).batch(64)
    val = tf.data.Dataset.from_tensor_slices((x[cut:], y[cut:])).batch(64)
    capfd.readouterr()
    result = tiny_search(mlflow_uri, experiment, data=(train, val), n_trials=2, selection="best")
    assert result.class_counts == np.bincount(y[:cut], minlength=10).tolist()
    assert "infer schema" not in capfd.readouterr().err  # MLflow's own logger, on stderr
    explicit = tiny_search(
        mlflow_uri,
        experiment,
        data={"train": (x[:cut], y[:cut]), "validation": (x[cut:], y[cut:])},
        n_trials=2,
        selection="best",
        refit=False,
    )
    assert explicit.class_counts == result.class_counts


def test_the_selection_keeps_a_recipe_unless_the_gain_is_clear():
    from lossearch.selection import Candidate, decide

    config = LossConfig("ce")
    recipe = Candidate(0, config, {}, "logit_adjusted", 0.76, [0.76, 0.75, 0.77])
    small = Candidate(7, config, {}, None, 0.78, [0.78, 0.77, 0.78])
    large = Candidate(8, config, {}, None, 0.90, [0.90, 0.89, 0.91])
    assert decide(small, recipe, 0.02, True, [recipe, small]).chosen is recipe
    chosen = decide(large, recipe, 0.02, True, [recipe, large])
    assert chosen.chosen is large and chosen.gain == pytest.approx(0.14)
    # minimizing: lower is better
    low = Candidate(9, config, {}, None, 0.2, [0.2, 0.2, 0.2])
    high = Candidate(1, config, {}, "r", 0.5, [0.5, 0.5, 0.5])
    assert decide(low, high, 0.01, False, [low, high]).chosen is low


def test_recipe_values_replay_to_the_recipe_config():
    from lossearch.search_space import RecipeSource, SearchSpace

    space = SearchSpace.load("long_tail", task="multiclass")
    for recipe in space.recipes:
        config = space.sample(RecipeSource(recipe), class_counts=[50, 10, 2])
        assert config.family == recipe.family and config.weights == recipe.weights
        assert config.drw_start == recipe.drw_start
        for key, value in recipe.params.items():
            assert config.params[key] == value


class InterruptSecondFit(keras.callbacks.Callback):
    """Presses Ctrl-C at the start of the second training run."""

    fits = 0

    def on_train_begin(self, logs=None):
        type(self).fits += 1
        if type(self).fits == 2:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_keeps_completed_trials_closes_the_runs_and_resumes(
    tmp_path, mlflow_uri, experiment, caplog
):
    x, y = digits()
    kwargs = dict(
        space="quick",
        storage=f"sqlite:///{tmp_path}/ctrlc.db",
        study_name="ctrlc",
        selection="best",
        refit=False,
        tracking_uri=mlflow_uri,
        experiment_name=experiment,
        **FAST,
    )
    with pytest.raises(KeyboardInterrupt):
        lossearch.optimize(
            dense_model(64, 10),
            (x, y),
            n_trials=4,
            fit_kwargs={"callbacks": [InterruptSecondFit()]},
            **kwargs,
        )
    assert "rerun with the same storage and study_name to resume" in caplog.text
    _, parents, children = runs_of(mlflow_uri, experiment)
    assert parents[0].info.status == "KILLED"
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    assert by_number[0].info.status == "FINISHED"
    assert by_number[1].info.status == "KILLED" and by_number[1].data.tags["state"] == "INTERRUPTED"
    result = lossearch.optimize(dense_model(64, 10), (x, y), n_trials=4, **kwargs)
    trials = result.study.trials
    # the interrupted trial ran to no end: not counted, the budget's four trials finish
    # besides it, its recipe queued again among them (on main: three, the recipe missing)
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert trials[0].value == pytest.approx(by_number[0].data.metrics["objective"])
    assert result.mlflow_run_id == parents[0].info.run_id
    rerun = [t.user_attrs.get("recipe") for t in trials[2:] if t.state.name == "COMPLETE"]
    assert trials[1].user_attrs["recipe"] in rerun


@pytest.mark.slow
def test_parallel_threads_in_one_process(mlflow_uri, experiment):
    x, y = digits()
    result = tiny_search(
        mlflow_uri, experiment, data=(x, y), n_trials=6, n_jobs=2, selection="best", refit=False
    )
    trials = result.study.trials
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    assert sorted(t.user_attrs["recipe"] for t in trials) == sorted(QUICK_RECIPES)
    _, parents, children = runs_of(mlflow_uri, experiment)
    assert len(parents) == 1 and len(children) == 6


class FailFourthFit(keras.callbacks.Callback):
    """Makes the 4th training run fail: with 3 trials, the first confirmation run."""

    fits = 0

    def on_train_begin(self, logs=None):
        type(self).fits += 1
        if type(self).fits == 4:
            raise RuntimeError("diverged on another seed")


@pytest.mark.slow
def test_a_candidate_failing_its_confirmation_is_dropped_not_fatal(mlflow_uri, experiment):
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        n_trials=3,
        confirm_seeds=1,
        refit=False,
        fit_kwargs={"callbacks": [FailFourthFit()]},
        seed=0,
    )
    assert "dropped as unstable" in result.selection.reason
    assert "diverged on another seed" in result.selection.reason
    table = result.selection.table
    assert len(table) == 2 and all(row["runs"] == 2 for row in table)


@pytest.mark.slow
def test_a_thousand_classes_of_two_samples_finish_and_close_the_parent(mlflow_uri, experiment):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(1000), 2)
    x = rng.normal(size=(len(y), 8)).astype("float32")

    def build_model():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(1000)])

    with pytest.warns(UserWarning, match="validation too small to judge"):
        result = tiny_search(
            mlflow_uri, experiment, build_model=build_model, data=(x, y), n_trials=1, epochs=1
        )
    client = mlflow.MlflowClient(mlflow_uri)
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED" and "finish_error" not in parent.data.tags
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "summary.txt", "plots"} <= artifacts
