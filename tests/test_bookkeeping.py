"""A search's bookkeeping against a fake trial runner: recipe order, the exact budget,
pruning, failures, resuming and confirmation runs. Real Optuna studies and MLflow runs;
no training (see tests/fakes.py)."""

import os
import re
import shutil

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from lossearch.metrics import evaluate
from lossearch.study import state as keys
from lossearch.study.stored import StoredStudy
from tests.fakes import FakeRunner, fake_search
from tests.search_helpers import QUICK_RECIPES


def _trials(driver):
    return driver.study.get_trials(deepcopy=False)


def _child_runs(uri, experiment):
    client = mlflow.MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_recipes_run_first_in_order_and_the_budget_is_exact(mlflow_uri, experiment):
    result, driver = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=9, selection="best")
    trials = _trials(driver)
    assert len(trials) == 9
    recipes = [t.user_attrs.get(keys.RECIPE) for t in trials[: len(QUICK_RECIPES)]]
    assert recipes == QUICK_RECIPES
    assert all(keys.RECIPE not in t.user_attrs for t in trials[len(QUICK_RECIPES) :])
    assert len(_child_runs(mlflow_uri, experiment)) == 9
    assert result.baseline_value == trials[1].value  # the CE baseline recipe, after the incumbent
    # An unnamed search is named by its space, date and time: the study, the MLflow parent
    # run and the report title say the same.
    assert re.fullmatch(r"quick-\d{4}-\d\d-\d\d-\d{6}", driver.name), driver.name
    parent = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert parent.info.run_name == driver.name == parent.data.tags["study_name"]
    assert result.search_summary().title == f"lossearch: {driver.name}"


def test_the_budget_is_exact_with_threads(mlflow_uri, experiment):
    _, driver = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=11, n_jobs=2, selection="best"
    )
    finished = [t for t in _trials(driver) if t.state.is_finished()]
    assert len(_trials(driver)) == len(finished) == 11


@pytest.mark.parametrize(
    "pruner", [None, optuna.pruners.ThresholdPruner(lower=2.0)], ids=["default", "prune-all"]
)
def test_pruned_trials_are_recorded_as_pruned_and_recipes_never_are(pruner, mlflow_uri, experiment):
    _, driver = fake_search(
        FakeRunner(epochs=6), mlflow_uri, experiment, n_trials=24, selection="best", pruner=pruner
    )
    trials = _trials(driver)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "the pruner should stop some below-median learning curves"
    assert all(keys.RECIPE not in t.user_attrs for t in pruned)
    if pruner is not None:  # whatever a user's pruner says, the recipes run to the end
        trained = [t for t in trials if keys.DUPLICATE_OF not in t.user_attrs]
        assert pruned == [t for t in trained if keys.RECIPE not in t.user_attrs]
    assert all(t.state == TrialState.COMPLETE for t in trials[: len(QUICK_RECIPES)])
    states = {
        r.data.tags["trial_number"]: r.data.tags["state"]
        for r in _child_runs(mlflow_uri, experiment)
    }
    assert {states[str(t.number)] for t in pruned} == {"PRUNED"}
    # The runs table tells them apart without opening a column: status and name.
    runs = {int(r.data.tags["trial_number"]): r for r in _child_runs(mlflow_uri, experiment)}
    for trial in trials:
        run = runs[trial.number]
        assert run.info.run_name.startswith(f"{trial.number:03d} {trial.params['family']}(")
        if trial.state == TrialState.PRUNED:
            assert run.info.status == "KILLED" and run.info.run_name.endswith(" · pruned")
        else:
            assert run.info.status == "FINISHED"
            assert run.info.run_name.endswith(f" · {trial.value:.3f}")


def test_a_deferred_reweighting_trial_is_judged_only_once_its_reweighting_has_begun(
    mlflow_uri, experiment
):
    # Before its start a DRW trial trains with every class weight 1: another loss than its
    # own. A pruner that prunes everything gets to judge it only from that epoch on.
    _, driver = fake_search(
        FakeRunner(epochs=6),
        mlflow_uri,
        experiment,
        n_trials=30,
        selection="best",
        pruner=optuna.pruners.ThresholdPruner(lower=2.0),
    )
    pruned = [t for t in _trials(driver) if t.state == TrialState.PRUNED]
    deferred = [t for t in pruned if t.params.get("drw_start") is not None]
    plain = [t for t in pruned if t.params.get("drw_start") is None]
    assert deferred and plain, "the quick space draws drw_start 0.5 or none"
    for trial in deferred:  # judged first after epoch 3 of 6 (0-based), pruned there
        assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    for trial in plain:
        assert sorted(trial.intermediate_values) == [0]


def test_failing_and_diverging_trials_are_failed_with_a_reason_and_the_search_goes_on(
    mlflow_uri, experiment
):
    runner = FakeRunner(fail={"focal"}, diverge={"ldam"})
    result, driver = fake_search(runner, mlflow_uri, experiment, n_trials=8, selection="best")
    by_recipe = {t.user_attrs.get(keys.RECIPE): t for t in _trials(driver)}
    assert by_recipe["focal"].state == TrialState.FAIL
    reason = "RuntimeError: focal is broken (a traceback-like second line)"  # one line
    assert by_recipe["focal"].user_attrs[keys.FAIL_REASON] == reason
    assert re.search(rf"failed: +\d+ trials?: {re.escape(reason)}", result.summary())
    frame = result.trials_dataframe()
    assert (
        frame.loc[frame.number == by_recipe["focal"].number, "user_attrs_fail_reason"].item()
        == reason
    )
    assert "TrialDiverged" in by_recipe["ldam_drw"].user_attrs[keys.FAIL_REASON]
    assert by_recipe["logit_adjusted"].state == TrialState.COMPLETE
    assert result.best_config.family not in ("focal", "ldam")
    failed = [r for r in _child_runs(mlflow_uri, experiment) if r.info.status == "FAILED"]
    assert {r.data.tags["trial_number"] for r in failed} >= {
        str(by_recipe["focal"].number),
        str(by_recipe["ldam_drw"].number),
    }
    assert reason in {r.data.tags["fail_reason"] for r in failed}


def test_a_rerun_resumes_the_study_and_its_parent_run(tmp_path, mlflow_uri, experiment):
    storage = f"sqlite:///{tmp_path}/study.db"
    common = {"storage": storage, "study_name": "resumed", "selection": "best"}
    first, _ = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=4, **common)
    runner = FakeRunner()
    second, driver = fake_search(runner, mlflow_uri, experiment, n_trials=9, **common)
    trials = _trials(driver)
    assert len(trials) == 9
    recipes = [t.user_attrs[keys.RECIPE] for t in trials if keys.RECIPE in t.user_attrs]
    assert recipes == QUICK_RECIPES  # each once: the rerun queued only the missing ones
    assert len(runner.calls) == 5  # the second run trained only the trials it added
    assert second.mlflow_run_id == first.mlflow_run_id
    stored = StoredStudy.load(storage, "resumed")
    assert stored.closed and stored.selection().chosen.number == second.best_trial_number
    assert stored.best_config() == second.best_config


def test_robust_selection_confirms_candidates_on_fresh_seeds(mlflow_uri, experiment):
    runner = FakeRunner()
    result, _ = fake_search(runner, mlflow_uri, experiment, n_trials=8, confirm_seeds=2)
    search_seeds = {seed for _, seed, _ in runner.calls[:8]}
    confirmation_seeds = {seed for _, seed, _ in runner.calls[8:]}
    assert len(runner.calls) > 8 and not confirmation_seeds & search_seeds
    assert result.selection.runs == 3  # the search trial and two confirmation runs
    assert result.selection.baseline_runs == 3
    assert result.selection.recipe is None or result.selection.recipe in QUICK_RECIPES


def test_a_failure_while_finishing_loses_nothing_and_closes_the_parent(
    tmp_path, mlflow_uri, experiment, monkeypatch, caplog
):
    def out_of_memory(*args):
        raise MemoryError("drawing the report")

    monkeypatch.setattr("lossearch.report.render_html", out_of_memory)
    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=3, storage=storage, study_name="s"
    )
    assert result.best_config is not None  # returned all the same
    stored = StoredStudy.load(storage, "s")
    assert len(stored.study.trials) == 3 and stored.closed  # the study has it all
    parent = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["finish_error"] == "MemoryError: drawing the report"
    assert "the search finished, but writing its results failed" in caplog.text


class RefitOutOfMemory(FakeRunner):
    def refit(self, record, seed):
        raise MemoryError("refit on all the data")


def test_a_failed_refit_leaves_the_result_without_a_model(mlflow_uri, experiment, recwarn):
    result, _ = fake_search(RefitOutOfMemory(), mlflow_uri, experiment, n_trials=2, refit=True)
    assert result.model is None and result.model_uri is None
    note = "refit failed (MemoryError: refit on all the data)"
    assert note in result.selection.warnings and note in result.summary()
    parent = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED"


def test_a_worker_with_another_space_or_objective_is_refused_before_any_trial(
    tmp_path, mlflow_uri, experiment
):
    common = {"storage": f"sqlite:///{tmp_path}/study.db", "study_name": "shared"}
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2, **common)
    stored = StoredStudy.load(common["storage"], "shared").study
    workers, trials = stored.user_attrs[keys.WORKERS], len(stored.trials)
    attempts = {
        "space: 'long_tail": {"runner": FakeRunner(), "space": "long_tail"},
        "objective: 'macro_f1' here, 'balanced_accuracy' in the study": {
            "runner": FakeRunner(objective="macro_f1")
        },
        # on main these three were accepted silently
        "training: '6 epochs, batch size 32, seed 0' here, '4 epochs": {
            "runner": FakeRunner(epochs=6)
        },
        "training: '4 epochs, batch size 32, seed 1' here, '4 epochs, batch size 32, seed 0'": {
            "runner": FakeRunner(),
            "seed": 1,
        },
        "training: '4 epochs, batch size 32, no seed' here": {"runner": FakeRunner(), "seed": None},
    }
    for difference, attempt in attempts.items():
        runner = attempt.pop("runner")
        with pytest.raises(ValueError, match="study 'shared' was started with another") as info:
            fake_search(runner, mlflow_uri, experiment, n_trials=4, **common, **attempt)
        assert difference in str(info.value)
        assert runner.calls == []
    stored = StoredStudy.load(common["storage"], "shared").study
    assert (stored.user_attrs[keys.WORKERS], len(stored.trials)) == (workers, trials)


def test_losing_the_storage_mid_search_is_one_clear_error_and_a_closed_parent(
    tmp_path, mlflow_uri, experiment
):
    folder = tmp_path / "journal"
    folder.mkdir()

    def remove_the_storage(study, trial):
        if trial.number == 1:
            shutil.rmtree(folder)

    with pytest.raises(RuntimeError, match="the search stopped: FileNotFoundError"):
        fake_search(
            FakeRunner(),
            mlflow_uri,
            experiment,
            n_trials=6,
            storage=f"journal:///{folder}/study.log",
            study_name="lost",
            callbacks=(remove_the_storage,),
        )
    client = mlflow.MlflowClient(mlflow_uri)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        "attributes.run_name = 'lost'",
    )
    assert (
        parent.info.status == "FAILED" and "FileNotFoundError" in parent.data.tags["finish_error"]
    )


def test_mlflow_call_limits_are_set_once_and_keep_the_users_own(monkeypatch, mlflow_uri):
    from lossearch.tracking import Tracker

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    Tracker(mlflow_uri, "limits")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"  # the user's
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "20"
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


SMOOTHED_FIRST = {
    "format": "lossearch.space/1",
    "name": "smoothed_first",
    "tasks": ["multiclass"],
    "families": {"ce": {}, "focal": {"gamma": {"type": "float", "low": 0.5, "high": 3.0}}},
    "weights": {"none": {}},
    "label_smoothing": {"type": "categorical", "choices": [0.0, 0.1]},
    "recipes": [
        {"name": "smoothed_ce", "family": "ce", "label_smoothing": 0.1},
        {"name": "plain_ce", "family": "ce"},
    ],
}


@pytest.mark.parametrize("rule", ["best", "robust"])
def test_the_live_search_and_its_stored_study_name_one_baseline(
    rule, tmp_path, mlflow_uri, experiment
):
    """On main the live search took the smoothed CE listed first as its baseline (its value,
    with the plain CE's metrics under selection="best"), while export and report took the
    plain CE."""
    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(),
        mlflow_uri,
        experiment,
        space=SMOOTHED_FIRST,
        n_trials=4,
        selection=rule,
        storage=storage,
        study_name=rule,
    )
    baseline = result.selection.baseline
    assert baseline.recipe == "plain_ce" and baseline.config.label_smoothing == 0.0
    if rule == "best":  # the baseline's value and metrics are one trial's
        assert result.baseline_metrics == baseline.metrics
        assert result.baseline_value == baseline.metrics["summary"]["balanced_accuracy"]
    stored = StoredStudy.load(storage, rule)
    summary = stored.summary()
    assert summary.closed and stored.baseline().number == baseline.number
    assert summary.selection.to_dict() == result.selection.to_dict()
    assert summary.text() == result.summary()  # report and sync-mlflow show the same


def test_sync_mlflow_writes_a_lost_parent_run_as_the_live_search_did(
    tmp_path, mlflow_uri, experiment
):
    """One writer: a parent recreated in another MLflow store has the live one's params,
    metrics, tags and artifacts (main wrote 2 params, no std, no timings, no summary.txt)."""
    import lossearch

    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=6, storage=storage, study_name="s"
    )
    other = f"sqlite:///{tmp_path}/other_mlflow.db"  # the first store is lost, say
    lossearch.sync_mlflow(storage, "s", tracking_uri=other, experiment_name=experiment)
    live = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    client = mlflow.MlflowClient(other)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (synced,) = [
        r for r in client.search_runs([experiment_id]) if "mlflow.parentRunId" not in r.data.tags
    ]
    assert synced.info.status == live.info.status == "FINISHED"
    assert synced.data.params == live.data.params and len(live.data.params) > 10
    assert synced.data.metrics == live.data.metrics
    assert {"best_value_std", "seconds_search", "baseline_value"} <= set(live.data.metrics)
    for tag in ("best_loss", "study_name", "lossearch.space"):
        assert synced.data.tags[tag] == live.data.tags[tag]

    def text(client, run, name):
        return open(client.download_artifacts(run.info.run_id, name, str(tmp_path))).read()

    live_client = mlflow.MlflowClient(mlflow_uri)
    for name in ("summary.txt", "selection.json", "best_loss.json"):
        assert text(client, synced, name) == text(live_client, live, name), name
    assert text(client, synced, "summary.txt") == result.summary()


def test_rerunning_a_finished_study_returns_its_pick_and_changes_nothing(
    tmp_path, mlflow_uri, experiment, caplog
):
    """On main a rerun said "other workers still run trials", counted a second worker and
    reopened the finished MLflow parent run for good, with unconfirmed numbers."""
    from lossearch.study.stored import load_best_config

    storage = f"sqlite:///{tmp_path}/study.db"
    common = {"storage": storage, "study_name": "done", "n_trials": 5}
    first, driver = fake_search(FakeRunner(), mlflow_uri, experiment, **common)
    client = mlflow.MlflowClient(mlflow_uri)
    before = client.get_run(first.mlflow_run_id).info
    runner = FakeRunner()
    again, driver = fake_search(runner, mlflow_uri, experiment, **common)
    assert runner.calls == []  # nothing trained
    assert any("is complete" in r.getMessage() for r in caplog.records)
    assert "other workers" not in caplog.text
    stored = StoredStudy.load(storage, "done")
    assert again.selection.to_dict() == stored.selection().to_dict() == first.selection.to_dict()
    assert again.best_config == load_best_config(storage, "done")
    assert stored.study.user_attrs[keys.WORKERS] == 1
    after = client.get_run(first.mlflow_run_id).info
    assert (
        (after.status, after.end_time)
        == (before.status, before.end_time)
        == (
            "FINISHED",
            before.end_time,
        )
    )
    assert again.mlflow_run_id == first.mlflow_run_id


def test_an_unwritable_artifact_store_closes_the_parent_failed_with_the_reason(
    tmp_path, mlflow_uri, experiment
):
    """On main the parent run was left RUNNING without finish_error (and the hint said
    `sync-mlflow --storage None`)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    client = mlflow.MlflowClient(mlflow_uri)
    client.create_experiment(experiment, artifact_location=f"file://{blocker}/artifacts")
    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=3, storage=storage, study_name="s"
    )
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FAILED"
    assert "MLflow stopped answering" in parent.data.tags["finish_error"]
    assert StoredStudy.load(storage, "s").closed  # the results are in the study


def test_a_tracking_store_that_cannot_start_the_run_is_refused_before_any_trial(
    mlflow_uri, experiment
):
    """On main a raw MlflowException escaped (here: a deleted experiment)."""
    client = mlflow.MlflowClient(mlflow_uri)
    client.delete_experiment(client.create_experiment(experiment))
    runner = FakeRunner()
    with pytest.raises(ValueError, match="tracking_uri: MLflow at .* cannot start the search's"):
        fake_search(runner, mlflow_uri, experiment, n_trials=2)
    assert runner.calls == []


def test_out_of_fold_curves_have_one_step_per_epoch_and_a_curve_per_fold(
    tmp_path, mlflow_uri, experiment
):
    """On main a 4-epoch trial scored on 3 folds logged 12 steps: a saw-tooth."""
    import lossearch

    storage = f"sqlite:///{tmp_path}/study.db"
    common = {"n_trials": 2, "storage": storage, "study_name": "s", "selection": "best"}
    result, _ = fake_search(FakeRunner(cv=3), mlflow_uri, experiment, **common)
    lossearch.sync_mlflow(storage, "s", tracking_uri=f"sqlite:///{tmp_path}/m2.db")
    for uri, name in ((mlflow_uri, experiment), (f"sqlite:///{tmp_path}/m2.db", "lossearch")):
        client = mlflow.MlflowClient(uri)
        experiment_id = client.get_experiment_by_name(name).experiment_id
        child = next(r for r in _child_runs(uri, name) if r.data.tags["trial_number"] == "0")
        curve = client.get_metric_history(child.info.run_id, "loss")
        assert sorted(m.step for m in curve) == [0, 1, 2, 3]
        folds = [client.get_metric_history(child.info.run_id, f"loss.fold{k}") for k in range(3)]
        assert all(sorted(m.step for m in f) == [0, 1, 2, 3] for f in folds)
        last = {m.step: m.value for m in curve}[3]
        fold_last = [{m.step: m.value for m in f}[3] for f in folds]
        assert last == pytest.approx(sum(fold_last) / 3)
        assert experiment_id


class RefitsTinyModels(FakeRunner):
    """A fake whose refit returns a real (untrained) model, to be scored on test data."""

    def refit(self, record, seed):
        import keras

        keras.utils.set_random_seed(0 if seed is None else seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def test_test_data_is_scored_once_for_the_pick_and_plain_ce_and_chooses_nothing(
    tmp_path, mlflow_uri, experiment
):
    """On main every number shown was a validation score."""
    from tests.fakes import _tiny_data

    x, y = _tiny_data(seed=1)
    runner = RefitsTinyModels()
    runner.data.test = (x, y)  # what prepare_data makes of optimize(..., test_data=(x, y))
    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        runner, mlflow_uri, experiment, n_trials=6, refit=True, storage=storage, study_name="t"
    )
    control, _ = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=6)
    assert result.selection.to_dict() == control.selection.to_dict()  # it chose nothing
    pick, ce = result.test_metrics["pick"], result.test_metrics["baseline"]
    assert set(pick["per_class"]) == {"0", "1", "2"} and ce["summary"]
    # plain CE as validation has it: with its own tuned rule (on main, arg-max on test only)
    baseline = result.selection.baseline
    assert baseline.decision is not None
    again = runner.predict(runner.refit(baseline, 0), x)
    expected = evaluate(y, baseline.decision.apply(again), **runner.context).to_dict()
    assert ce["summary"] == pytest.approx(expected["summary"])
    assert "test:      balanced_accuracy" in result.summary() and "held out" in result.summary()
    parent = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert parent.data.metrics["test_balanced_accuracy"] == pytest.approx(
        pick["summary"]["balanced_accuracy"]
    )
    assert "test_baseline_balanced_accuracy" in parent.data.metrics
    assert StoredStudy.load(storage, "t").summary().text() == result.summary()


def test_the_report_reads_the_importances_the_search_computed_when_it_closed(
    tmp_path, mlflow_uri, experiment
):
    """`lossearch report` reads them from the study rather than loading scikit-learn to
    compute them again (issue 41: every answer that needs no training within a second)."""
    from lossearch.study import state as keys

    storage = f"sqlite:///{tmp_path}/study.db"
    result, _ = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=8, storage=storage, study_name="s"
    )
    live = result.search_summary().importances
    stored = StoredStudy.load(storage, "s")
    assert stored.study.user_attrs[keys.IMPORTANCES] == live
    assert stored.summary().importances == live and list(live)  # in the same order
    stored.study.set_user_attr(keys.IMPORTANCES, {"family": 1.0})
    assert StoredStudy.load(storage, "s").importances() == {"family": 1.0}  # read, not computed
