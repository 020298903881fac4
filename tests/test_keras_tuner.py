"""The Keras Tuner backend: same search, four tuners, LossHyperModel, distributed mode."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest

import lossearch
from lossearch.integrations.keras_tuner import LossHyperModel, best_config
from tests.search_helpers import dense_model, digits, runs_of, tiny_search

ROOT = Path(__file__).parent.parent
FAST = {
    "epochs": 3,
    "batch_size": 64,
    "show_progress": False,
    "seed": 0,
    "confirm_seeds": 1,
    "cv": None,
}


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["hyperband", "bayesian", "random", "grid"])
def test_optimize_with_each_keras_tuner(
    tuner, tmp_path, monkeypatch, mlflow_uri, experiment, capsys
):
    monkeypatch.chdir(tmp_path)  # the tuner project lives in ./.lossearch/tuner
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        backend="keras_tuner",
        tuner=tuner,
        n_trials=3,
        # what differs between tuners is the search; confirming and refitting once is enough
        confirm_seeds=1 if tuner == "hyperband" else 0,
        refit=tuner == "hyperband",
        show_progress=True,
    )
    out = capsys.readouterr()
    assert "Best Value So Far" not in out.out  # no Keras Tuner tables, a progress bar instead
    assert result.search.name in out.err and "trial" in out.err
    assert (tmp_path / ".lossearch" / "tuner" / result.search.name).is_dir()
    assert isinstance(result.study, kt.engine.base_tuner.BaseTuner)
    states = result.search.trial_states()
    assert states and all(state == "COMPLETE" for _, state, _ in states)
    # the table in Optuna's words (on main: COMPLETED, and None beside 'null')
    table = result.trials_dataframe()
    assert set(table["state"]) == {"COMPLETE"} and table["value"].dtype == float
    assert not (table.astype(str) == "null").any().any()
    _, parents, children = runs_of(mlflow_uri, experiment)
    assert len(parents) == 1 and len(children) == len(states)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {result.mlflow_run_id}
    for child in children:  # the same params and metrics as the Optuna backend logs
        assert {"loss.family", "loss.weights"} <= set(child.data.params)
        assert {"balanced_accuracy", "recall.9", "f1.9", "ap.9"} <= set(child.data.metrics)
    if tuner != "grid":  # grid search enumerates; the others take the recipes first
        ordered = sorted(children, key=lambda c: int(c.data.tags["trial_number"]))
        # the incumbent first, then the CE baseline (as on Optuna)
        assert [c.data.tags["recipe"] for c in ordered[:2]] == ["logit_adjusted", "ce_baseline"]
    # like for like: under Hyperband the CE trial may have trained fewer epochs than the
    # pick; both are measured over the same number of full-budget runs
    runs = 2 if tuner == "hyperband" else 1  # one confirmation seed, or none
    assert result.selection.baseline_runs == result.selection.runs == runs
    path = tmp_path / "best.json"
    result.export(path)
    logits = np.random.default_rng(0).normal(size=(16, 10)).astype("float32")
    assert float(lossearch.load_loss(path)(y[:16], logits)) == float(
        result.best_config.build()(y[:16], logits)
    )


@pytest.mark.slow
def test_loss_hypermodel_in_a_user_made_hyperband(tmp_path):
    x, y = digits()
    xv, yv = x[::4], y[::4]

    def build_model(hp):
        units = hp.Int("units", 8, 16, step=8)
        return keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(units, activation="relu"),
                keras.layers.Dense(10),
            ]
        )

    counts = np.bincount(y).tolist()
    tuner = kt.Hyperband(
        LossHyperModel(build_model, space="long_tail", class_counts=counts),
        objective=kt.Objective("val_balanced_accuracy", "max"),
        max_epochs=3,
        directory=str(tmp_path),
        project_name="user",
        seed=0,
    )
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    best_hp = tuner.get_best_hyperparameters()[0]
    config = best_config(tuner)
    assert config.family == best_hp.values["family"]
    assert config.class_counts == tuple(counts)
    # conditional parameters never appear for a family or scheme that doesn't use them
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        for name in values:
            if "." in name and not name.startswith("weights."):
                assert name.split(".")[0] == values["family"], values
            if name.startswith("weights."):
                assert name.split(".")[1] == values["weights"], values
            if name == "drw_start":
                assert values["weights"] != "none"
    assert "units" in best_hp.values  # the user's own hp lives beside the loss's
    best = tuner.oracle.get_best_trials(1)[0]
    assert "val_balanced_accuracy" in best.metrics.metrics


def test_loss_hypermodel_rejects_counts_that_do_not_fit_the_model():
    with pytest.raises(ValueError, match="class_counts"):
        LossHyperModel(dense_model(64, 10), class_counts=[5, 3])
    with pytest.raises(ValueError, match="class_counts"):
        LossHyperModel(dense_model(64, 10))


@pytest.mark.slow
def test_one_space_file_drives_both_backends(tmp_path, monkeypatch, mlflow_uri, experiment):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "mine.yaml"
    space.write_text(
        "format: lossearch.space/1\nname: mine\n"
        "families:\n  ce: {}\n  focal:\n    gamma: {type: float, low: 0.5, high: 2.5}\n"
        "weights:\n  none: {}\n  effective_number:\n"
        "    beta: {type: categorical, choices: [0.99, 0.999]}\n"
        "drw_start: {type: categorical, choices: [null, 0.5]}\n"
        "recipes:\n  - {name: base, family: ce}\n"
        "  - {name: cb_focal, family: focal, params: {gamma: 1.0}, weights: effective_number,"
        " weight_params: {beta: 0.999}}\n"
    )
    x, y = digits()
    loaded = lossearch.SearchSpace.load(str(space), task="multiclass")
    results = {
        backend: lossearch.optimize(
            dense_model(64, 10),
            (x, y),
            space=loaded,
            backend=backend,
            tuner="random",
            n_trials=4,
            selection="best",
            refit=False,
            tracking_uri=mlflow_uri,
            experiment_name=f"{experiment}_{backend}",
            **{**FAST, "confirm_seeds": 0},
        )
        for backend in ("optuna", "keras_tuner")
    }
    for backend, result in results.items():
        assert result.best_config.family in ("ce", "focal")
        _, _, children = runs_of(mlflow_uri, f"{experiment}_{backend}")
        ordered = sorted(children, key=lambda c: int(c.data.tags["trial_number"]))
        assert [c.data.tags["recipe"] for c in ordered[:2]] == ["base", "cb_focal"], backend
        second = ordered[1].data.params
        assert (second["loss.family"], second["loss.gamma"], second["loss.beta"]) == (
            "focal",
            "1.0",
            "0.999",
        ), backend
        assert all(c.data.params["loss.family"] in ("ce", "focal") for c in children)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_distributed_keras_tuner_chief_and_two_workers(tmp_path):
    port = str(_free_port())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = str(ROOT / "tests" / "kt_distributed.py")

    def start(role):
        return subprocess.Popen(
            [sys.executable, script, role, port, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    chief = start("chief")
    time.sleep(3)
    workers = [start("tuner0"), start("tuner1")]
    try:
        for process in [*workers, chief]:
            out, _ = process.communicate(timeout=400)
            assert process.returncode == 0, out[-3000:]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                process.kill()
    report = json.loads((tmp_path / "chief.json").read_text())
    ran = [json.loads((tmp_path / f"tuner{i}.json").read_text())["ran"] for i in range(2)]
    trials = report["trials"]
    assert len(trials) == 6
    assert set(trials.values()) == {"COMPLETED"}
    # every trial is accounted for: run by exactly one worker
    assert sorted(ran[0] + ran[1]) == sorted(trials)
    assert report["best"]["format"] == "lossearch.loss/1"


def test_loss_hypermodel_fit_supplies_the_drw_callback():
    x, y = digits()
    hypermodel = LossHyperModel(
        dense_model(64, 10), space="quick", class_counts=np.bincount(y).tolist()
    )
    hp = kt.HyperParameters()
    # drw_start's choices mix null and floats, so Keras Tuner holds them as JSON strings
    hp.values.update({"family": "ce", "weights": "inverse", "drw_start": "0.5"})
    config = hypermodel.config_for(hp)
    assert (config.weights, config.drw_start) == ("inverse", 0.5)
    model = hypermodel.build(hp)
    assert float(keras.ops.convert_to_numpy(model.loss.reweighting)) == 0.0
    hypermodel.fit(hp, model, x, y, epochs=2, verbose=0)
    assert float(keras.ops.convert_to_numpy(model.loss.reweighting)) == 1.0  # switched at epoch 1


def test_loss_hypermodel_balances_multilabel_positives_against_all_samples():
    # Regression: pos_weight="balanced" is (n - positives) / positives over the *samples*;
    # the hypermodel once passed the sum of the positives as n ([0.7, 1.83, 16] here).
    space = {
        "tasks": ["multilabel"],
        "families": {"pos_weighted_bce": {"pos_weight": "balanced"}},
        "weights": {"none": {}},
    }
    hypermodel = LossHyperModel(
        dense_model(64, 3, activation="sigmoid"),
        space=space,
        class_counts=[50, 30, 5],
        n_samples=100,
    )
    assert hypermodel.task == "multilabel"
    config = hypermodel.config_for(kt.HyperParameters())
    assert config.build().get_config()["pos_weight"] == pytest.approx([1.0, 70 / 30, 19.0])
    with pytest.raises(ValueError, match="n_samples"):
        LossHyperModel(
            dense_model(64, 3, activation="sigmoid"), space=space, class_counts=[50, 30, 5]
        )


def test_the_search_and_the_hypermodel_tell_a_loss_the_same_facts(mlflow_uri):
    from lossearch.data import prepare_data
    from lossearch.metrics import Objective
    from lossearch.models import model_builder, probe_model
    from lossearch.runner import TrialRunner
    from lossearch.search_space import SearchSpace
    from tests.search_helpers import ml_digits

    x, y = ml_digits()
    build = dense_model(64, 3, activation="sigmoid")
    facts = probe_model(model_builder(build))
    data = prepare_data((x, y), output_shape=facts.output_shape, activation=facts.activation)
    runner = TrialRunner(build, data, Objective("macro_pr_auc"), minority_classes=[2], facts=facts)
    hypermodel = LossHyperModel.for_runner(
        runner, SearchSpace.load("multilabel", task="multilabel")
    )
    assert hypermodel.facts == runner.config_facts()
    assert hypermodel.facts["n_samples"] == len(data.splits[0].y_train)


def test_a_space_name_never_leads_the_tuner_project_out_of_its_folder():
    """On main a space named '../../../escaped' put the tuner's files outside .lossearch/."""
    import os

    from lossearch.backends.keras_tuner import _project_name, default_directory
    from lossearch.settings import plain_name, readable_study_name

    name = readable_study_name("../../../escaped")
    assert plain_name(name) and _project_name(name) == name
    folder = os.path.realpath(os.path.join(default_directory(), name))
    assert folder.startswith(os.path.realpath(default_directory()) + os.sep)
    with pytest.raises(ValueError, match="outside"):
        _project_name("../escaped")


def test_keras_tuner_keeps_the_timeout(tmp_path, monkeypatch, mlflow_uri, experiment):
    """On main `timeout` was ignored on Keras Tuner. As on Optuna, no trial starts once it
    has passed; the first always runs."""
    monkeypatch.chdir(tmp_path)
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        backend="keras_tuner",
        tuner="random",
        n_trials=6,
        timeout=1e-6,
        confirm_seeds=0,
        refit=False,
    )
    assert len(result.search.trial_states()) == 1


def _unsupported_on_keras_tuner():
    import optuna

    from lossearch.capabilities import CAPABILITIES, FEATURES

    passed = {
        "threads": {"n_jobs": 2},
        "sampler": {"sampler": optuna.samplers.RandomSampler()},
        "pruner": {"pruner": optuna.pruners.NopPruner()},
        "storage": {"storage": "sqlite:///kt.db"},
        "callbacks": {"callbacks": [lambda study, trial: None]},
    }
    missing = set(FEATURES) - CAPABILITIES["keras_tuner"].supported
    assert missing == set(passed)  # a feature added to the table gets a case here
    return [pytest.param(feature, passed[feature], id=feature) for feature in sorted(missing)]


@pytest.mark.parametrize(("feature", "kwargs"), _unsupported_on_keras_tuner())
def test_what_keras_tuner_lacks_is_refused_before_any_trial(
    feature, kwargs, tmp_path, monkeypatch, mlflow_uri, experiment
):
    from lossearch.capabilities import CAPABILITIES

    monkeypatch.chdir(tmp_path)
    x, y = digits()
    with pytest.raises(ValueError) as info:
        lossearch.optimize(
            dense_model(64, 10),
            (x, y),
            backend="keras_tuner",
            tracking_uri=mlflow_uri,
            experiment_name=experiment,
            n_trials=1,
            epochs=1,
            show_progress=False,
            **kwargs,
        )
    message = str(info.value)
    assert message.startswith(f"{next(iter(kwargs))}: the keras_tuner backend does not support")
    assert CAPABILITIES["keras_tuner"].instead[feature] in message
    assert not (tmp_path / ".lossearch").exists()  # refused before any tuner project opened


def test_keras_tuner_stops_early_as_optuna_does(tmp_path, monkeypatch, mlflow_uri, experiment):
    """On main `early_stop` was accepted and ignored on Keras Tuner. Now its stopper is asked
    between trials, as on Optuna: here one that stops once a sampled trial has finished."""
    from lossearch.stopping import BaseStopper

    class AfterOneSampled(BaseStopper):
        def reason_to_stop(self, progress):
            done = progress.sampled_finished >= 1 and not progress.recipes_pending
            return "one sampled trial is enough here" if done else None

    monkeypatch.chdir(tmp_path)
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        backend="keras_tuner",
        tuner="random",
        n_trials=8,
        early_stop=AfterOneSampled(),
        confirm_seeds=0,
        refit=False,
    )
    records = result.search.completed_records()
    sampled = [r for r in records if r.recipe is None]
    assert len(sampled) == 1 and len(records) < 8  # the recipes, then one sampled trial
    assert len(result.search.trial_states()) == len(records)
    assert result.search.stopped_early() == "one sampled trial is enough here"
    assert "one sampled trial is enough here" in result.summary()


def test_a_keras_tuner_search_is_exported_reported_and_synced_from_the_command_line(
    tmp_path, monkeypatch, mlflow_uri, experiment, capsys
):
    """On main a Keras Tuner search kept only its choice in a file StoredStudy could not read:
    export, report and sync-mlflow answered for Optuna studies only."""
    from lossearch.cli import main
    from lossearch.study.state import KERAS_TUNER_FILE
    from lossearch.study.stored import StoredStudy

    monkeypatch.chdir(tmp_path)
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        backend="keras_tuner",
        tuner="random",
        n_trials=3,
        study_name="kt",
        confirm_seeds=0,
        refit=False,
    )
    assert (tmp_path / ".lossearch" / "tuner" / "kt" / KERAS_TUNER_FILE).is_file()
    storage = "keras_tuner:///.lossearch/tuner"
    stored = StoredStudy.load(storage, "kt")
    assert stored.best_config().to_dict() == result.best_config.to_dict()
    assert stored.states() == {"COMPLETE": 3} and stored.closed
    assert [r.number for r in stored.records()] == [
        r.number for r in result.search.completed_records()
    ]
    where = ["--storage", storage, "--study", "kt"]
    assert main(["export", *where, "-o", str(tmp_path / "best.json")]) == 0
    exported = json.loads((tmp_path / "best.json").read_text())
    assert exported == result.best_config.to_dict()
    assert main(["report", *where, "-o", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "data:image/svg+xml;base64," in page
    assert result.best_config.describe().split("(")[0] in page
    # a new MLflow store: sync-mlflow logs the search again from what the project kept
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    assert main(["sync-mlflow", *where, "--tracking-uri", fresh]) == 0
    _, parents, children = runs_of(fresh, "lossearch")
    assert len(parents) == 1 and len(children) == 3
    assert all("loss.family" in c.data.params for c in children)
    assert all("val_balanced_accuracy" in c.data.metrics for c in children)
    assert main(["export", "--storage", storage, "--study", "nope", "-o", "x.json"]) == 2
    assert "searches there: ['kt']" in capsys.readouterr().err  # the projects it holds
