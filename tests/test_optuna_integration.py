"""The loss search inside the user's own Optuna study: suggest_loss, recipes, pruning,
MLflow, and the study read back by lossearch export / report and by optuna-dashboard."""

import json
import os
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import keras
import numpy as np
import optuna
import pytest

import lossearch
from lossearch import cli
from lossearch.integrations.optuna import (
    PruningCallback,
    best_config,
    enqueue_recipes,
    suggest_loss,
)
from tests.mlflow_store import new_store
from tests.search_helpers import runs_of, tiny_search

ROOT = Path(__file__).parent.parent
COUNTS = [500, 50, 5]


@pytest.fixture(scope="module")
def own_study(tmp_path_factory):
    """The example, run as a user runs it: its study and MLflow store."""
    folder = tmp_path_factory.mktemp("own")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the default
    env.update(PYTHONPATH=str(ROOT), LOSSEARCH_EXAMPLE_BUDGET="small")
    new_store(folder / "mlflow.db")  # MLflow's default store, found there migrated
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "optuna_own_objective.py")],
        cwd=folder,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"folder": folder, "storage": f"sqlite:///{folder}/own_objective.db", "out": done.stdout}


@pytest.mark.slow
def test_the_example_queues_recipes_logs_to_mlflow_and_exports(own_study):
    study = optuna.load_study(study_name="own-objective", storage=own_study["storage"])
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 7
    recipes = [t.user_attrs.get("recipe") for t in trials[:5]]
    assert recipes == [
        "ce_baseline",
        "inverse_weighted_ce",
        "effective_number_ce",
        "logit_adjusted",
        "ldam_drw",
    ]
    assert trials[3].params["family"] == "logit_adjusted" and trials[3].params["units"] >= 16
    assert all("config" in t.user_attrs for t in trials)
    # One MLflow parent for the study, one child per trial with the loss params.
    _, parents, children = runs_of(f"sqlite:///{own_study['folder']}/mlflow.db", "examples")
    assert len(parents) == 1 and len(children) == 7
    assert {c.data.params["loss.family"] for c in children} >= {"ce", "logit_adjusted", "ldam"}
    assert all(c.data.params["hp.units"] for c in children)
    complete = [c for c in children if c.data.tags["state"] == "COMPLETE"]
    assert all("objective" in c.data.metrics for c in complete)
    # Exported from the study, the best loss is the best trial's.
    exported = own_study["folder"] / "exported.json"
    assert (
        cli.main(
            [
                "export",
                "--storage",
                own_study["storage"],
                "--study",
                "own-objective",
                "-o",
                str(exported),
            ]
        )
        == 0
    )
    assert json.loads(exported.read_text()) == json.loads(
        (own_study["folder"] / "best_loss.json").read_text()
    )
    assert lossearch.load_loss(str(exported)).get_config() == (
        best_config(study).build().get_config()
    )
    assert best_config(study).family == study.best_trial.params["family"]
    report = own_study["folder"] / "report.html"
    assert (
        cli.main(
            [
                "report",
                "--storage",
                own_study["storage"],
                "--study",
                "own-objective",
                "-o",
                str(report),
            ]
        )
        == 0
    )
    assert "own-objective" in report.read_text()


def _dashboard_get(storage, path):
    from optuna_dashboard import wsgi

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(wsgi(storage)(environ, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


@pytest.mark.slow
def test_optuna_dashboard_reads_the_loss_parameters_back(own_study):
    studies = _dashboard_get(own_study["storage"], "/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == "own-objective"]
    detail = _dashboard_get(own_study["storage"], f"/api/studies/{summary['study_id']}")
    trials = detail["trials"]
    assert len(trials) == 7
    first = {p["name"]: p["param_external_value"] for p in trials[0]["params"]}
    assert first["family"] == "ce" and first["weights"] == "none"
    names = {p["name"] for t in trials for p in t["params"]}
    assert {"family", "weights", "units", "logit_adjusted.tau"} <= names
    attrs = {a["key"] for a in trials[0]["user_attrs"]}
    assert {"config", "recipe"} <= attrs


def test_suggest_loss_draws_the_parameters_optimize_draws():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    queued = enqueue_recipes(study, space="long_tail", class_counts=COUNTS)
    assert queued[0] == "ce_baseline"
    assert enqueue_recipes(study, "long_tail", class_counts=COUNTS) == []  # each recipe once
    configs = []
    for _ in range(len(queued) + 5):
        trial = study.ask()
        configs.append(suggest_loss(trial, space="long_tail", class_counts=COUNTS))
        study.tell(trial, 0.5)
    assert configs[0].family == "ce" and configs[0].weights == "none"
    assert configs[3].family == "logit_adjusted" and configs[3].params["tau"] == 1.0
    assert all(list(c.class_counts) == COUNTS and c.task == "multiclass" for c in configs)
    for trial, config in zip(study.trials, configs, strict=True):
        assert lossearch.LossConfig.from_dict(trial.user_attrs["config"]) == config
        assert trial.params["family"] == config.family
        assert not [
            k
            for k in trial.params
            if "." in k
            and not k.startswith(config.family)
            and not k.startswith(f"weights.{config.weights}")
        ]


def test_bad_arguments_are_named():
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="class_counts"):
        suggest_loss(trial, space="long_tail", class_counts=[10, 0, 3])
    with pytest.raises(ValueError, match="task"):
        suggest_loss(trial, class_counts=COUNTS, task="regression")
    with pytest.raises(ValueError, match="n_samples"):
        suggest_loss(trial, space="multilabel", class_counts=[5, 3])
    with pytest.raises(ValueError, match="space: unknown space"):
        enqueue_recipes(optuna.create_study(), space="nope", class_counts=COUNTS)


def test_the_pruning_callback_reports_each_epoch_and_prunes():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )

    def objective(trial):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(
            x,
            y,
            validation_data=(x, y),
            epochs=3,
            verbose=0,
            callbacks=[PruningCallback(trial, "val_accuracy")],
        )
        return 1.0

    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [0]
    # a queued recipe is reported each epoch but never pruned (on main it was)
    study.enqueue_trial({}, user_attrs={"recipe": "ce_baseline"})
    study.optimize(objective, n_trials=1)
    recipe = study.trials[-1]
    assert recipe.state.name == "COMPLETE" and list(recipe.intermediate_values) == [0, 1, 2]
    with pytest.raises(ValueError, match="monitor: 'val_nope'"):
        PruningCallback(study.ask(), "val_nope").on_epoch_end(0, {"val_accuracy": 0.5})


@pytest.mark.slow
def test_optimize_passes_optuna_callbacks_through(mlflow_uri, experiment):
    from tests.search_helpers import digits

    seen = []
    tiny_search(
        mlflow_uri,
        experiment,
        data=digits(),
        n_trials=2,
        selection="best",
        refit=False,
        callbacks=[lambda study, trial: seen.append(trial.number)],
    )
    assert seen == [0, 1]


@pytest.mark.slow
def test_a_report_of_an_own_study_names_its_objective_and_says_it_is_finished(own_study, capsys):
    """On main: "Objective: objective", every metric "–", an empty per-class table and
    "search not closed" for a finished study."""
    from lossearch import cli

    out = own_study["folder"] / "own_report.html"
    argv = ["report", "--storage", own_study["storage"], "--study", "own-objective"]
    assert cli.main([*argv, "-o", str(out)]) == 0
    page = out.read_text()
    assert "search not closed" not in page and "study&#x27;s best trial" in page
    assert "<td>value (maximize)</td>" in page  # Optuna's name for it (or its metric name)
    assert "no per-class metrics" in page
    assert "<h2>Per-class metrics" not in page
