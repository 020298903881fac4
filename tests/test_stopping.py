"""Stopping early (lossearch.stopping): a search whose sampled trials never come near the
incumbent stops after the patience, says why in the summary, the study and MLflow, and a
rerun finds it complete; a contender or ``early_stop=False`` keeps the whole budget. Real
Optuna studies and MLflow runs against the fake trial runner (tests/fakes.py)."""

from types import SimpleNamespace

import mlflow
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from lossearch._noise import Z_CLEAR, bootstrap_std
from lossearch.config import LossConfig
from lossearch.stopping import PATIENCE, BaseStopper, NoChallengerStopper, SearchProgress
from lossearch.study import state as keys
from lossearch.study.state import TrialRecord
from lossearch.study.stored import StoredStudy
from tests.fakes import COUNTS, FakeRunner, fake_search
from tests.search_helpers import QUICK_RECIPES


def _is_incumbent(config) -> bool:
    return config.family == "logit_adjusted" and config.params.get("tau") == 1.0


class IncumbentFar(FakeRunner):
    """The logit-adjusted recipe (the incumbent) is near perfect, every other config poor."""

    strength = {True: 6.0, False: 0.3}

    def predictions(self, config, seed, y_true):
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(len(y_true), len(COUNTS)))
        logits[np.arange(len(y_true)), y_true] += self.strength[_is_incumbent(config)]
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


class IncumbentBehind(IncumbentFar):
    """Every other config far better than the incumbent: each sampled trial is a contender."""

    strength = {True: 0.5, False: 6.0}


def _finished(driver):
    return [t for t in driver.study.get_trials(deepcopy=False) if t.state.is_finished()]


def test_no_challenger_stops_after_the_patience_and_says_why(tmp_path, mlflow_uri, experiment):
    storage = f"sqlite:///{tmp_path}/study.db"
    common = {"n_trials": 20, "storage": storage, "study_name": "far", "confirm_seeds": 1}
    result, driver = fake_search(IncumbentFar(), mlflow_uri, experiment, **common)
    trials = _finished(driver)
    assert len(trials) == len(QUICK_RECIPES) + PATIENCE  # the recipes, then the patience
    reason = result.search_summary().stopped_early
    assert reason.startswith(f"no challenger after {PATIENCE} sampled trials (")
    assert " completed, the others pruned or failed): none completed " in reason
    # what the confirmation asks, each trial against the noise of its own paired gain
    assert "none completed 1.64 standard errors of its paired gain better than" in reason
    assert " the recipe to beat, recipe 'logit_adjusted' (" in reason
    assert f"stopped:   early, {reason}" in result.summary()
    assert result.selection.recipe == "logit_adjusted"
    run = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert run.data.tags["stopped_early"] == reason and run.info.status == "FINISHED"
    assert StoredStudy.load(storage, "far").summary().stopped_early == reason

    # A rerun finds the study complete; early_stop=False searches on to the budget.
    runner = IncumbentFar()
    again, _ = fake_search(runner, mlflow_uri, experiment, **common)
    assert runner.calls == [] and again.selection.reason == result.selection.reason
    assert again.selection.chosen.number == result.selection.chosen.number
    on, driver = fake_search(IncumbentFar(), mlflow_uri, experiment, **common, early_stop=False)
    assert len(_finished(driver)) == 20
    assert on.search_summary().stopped_early is None and "stopped:" not in on.summary()


def _confirmation_runs(runner) -> list[str]:
    """The families the confirmation trained: its seeds start at the search seed + 10,000."""
    return [family for family, seed, _ in runner.calls if seed >= 10_000]


def _rows(result) -> dict:
    return {row["recipe"] or row["trial"]: row for row in result.selection.table}


def test_after_the_stop_only_the_incumbent_is_confirmed(mlflow_uri, experiment):
    """No candidate came near the bar: each is reported from its search run, set aside, and
    only the incumbent trains its confirmation runs (whose decision rule they tune)."""
    runner = IncumbentFar()
    result, driver = fake_search(runner, mlflow_uri, experiment, n_trials=30, confirm_seeds=2)
    assert len(_finished(driver)) == len(QUICK_RECIPES) + PATIENCE
    assert _confirmation_runs(runner) == ["logit_adjusted"] * 2
    rows = _rows(result)
    assert rows["logit_adjusted"]["runs"] == 3 and not rows["logit_adjusted"]["set_aside"]
    others = [row for name, row in rows.items() if name != "logit_adjusted"]
    assert others and all(row["set_aside"] and row["runs"] == 1 for row in others)
    assert result.selection.baseline_runs == 1 and result.selection.runs == 3
    assert driver.study.user_attrs[keys.CONTENDERS] == [result.selection.incumbent.number]
    assert "not raced, the search having stopped early: " in result.selection.reason
    assert "(no clear gain over the recipe to beat on their search runs)" in result.selection.reason
    text = result.summary()
    assert "no other config came near enough to be raced once the search stopped early" in text
    assert "3 runs against 1: too few to tell from noise" in text


class RecipeAhead(IncumbentFar):
    """The focal recipe (gamma 2) better than the incumbent, every sampled trial poor: the search
    stops (nothing left to sample), and the recipe is raced."""

    def predictions(self, config, seed, y_true):
        recipe = config.family == "focal" and config.params.get("gamma") == 2.0
        boost = 6.0 if recipe else 1.5 if _is_incumbent(config) else 0.3
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(len(y_true), len(COUNTS)))
        logits[np.arange(len(y_true)), y_true] += boost
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_after_the_stop_a_candidate_above_the_bar_is_still_raced(mlflow_uri, experiment):
    runner = RecipeAhead()
    result, _ = fake_search(runner, mlflow_uri, experiment, n_trials=30, confirm_seeds=2)
    assert result.search_summary().stopped_early is not None
    rows = _rows(result)
    assert not rows["focal"]["set_aside"] and rows["focal"]["runs"] == 3
    assert result.selection.recipe == "focal"  # and it wins
    assert sorted(set(_confirmation_runs(runner))) == ["focal", "logit_adjusted"]


def test_a_search_that_used_its_budget_did_not_stop_early(mlflow_uri, experiment):
    n_trials = len(QUICK_RECIPES) + PATIENCE  # the stop would come just as the budget ends
    result, driver = fake_search(IncumbentFar(), mlflow_uri, experiment, n_trials=n_trials)
    assert len(_finished(driver)) == n_trials
    assert result.search_summary().stopped_early is None


class SlightlyAhead(IncumbentFar):
    """Every other config right on a few more validation samples than the incumbent, the same
    on all the others: a gain within the noise of the incumbent's own score, but clear for the
    pair, whose shared samples cancel."""

    def predictions(self, config, seed, y_true):
        rng = np.random.default_rng(0)  # one draw for every config and seed: paired noise
        logits = rng.normal(size=(len(y_true), len(COUNTS)))
        logits[np.arange(len(y_true)), y_true] += 0.8 if _is_incumbent(config) else 1.15
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_a_gain_clear_for_the_pair_is_a_contender(mlflow_uri, experiment):
    """The bar is each trial's paired standard error, as in the confirmation, not the
    incumbent's own: a gain short of 1.64 of the latter still keeps the search going."""
    runner = SlightlyAhead()
    result, driver = fake_search(runner, mlflow_uri, experiment, n_trials=18, confirm_seeds=1)
    assert len(_finished(driver)) == 18 and result.search_summary().stopped_early is None
    y_true = runner.data.validation_targets
    incumbent = runner.predictions(
        SimpleNamespace(family="logit_adjusted", params={"tau": 1.0}), 0, y_true
    )
    own_se = bootstrap_std(
        lambda i: runner.objective(y_true[i], incumbent[i], **runner.context), len(y_true)
    )
    gains = [t.value - result.selection.incumbent.value for t in _finished(driver)]
    assert 0 < max(gains) < Z_CLEAR * own_se  # short of the incumbent's own noise


def test_a_contender_keeps_the_whole_budget(mlflow_uri, experiment):
    result, driver = fake_search(
        IncumbentBehind(), mlflow_uri, experiment, n_trials=18, confirm_seeds=1
    )
    assert len(_finished(driver)) == 18
    assert result.search_summary().stopped_early is None


class CloseBehind(IncumbentFar):
    """Every other config a little worse than the incumbent: within its noise, not above it."""

    strength = {True: 1.5, False: 1.3}


def test_a_positive_margin_counts_trials_close_behind_the_incumbent(mlflow_uri, experiment):
    """Trials close behind the incumbent do not beat it: the default stops; a positive margin
    (the default until 2026-12-03) makes them contenders, and the search uses its budget."""
    common = {"n_trials": 18, "confirm_seeds": 1}
    _, driver = fake_search(CloseBehind(), mlflow_uri, experiment, **common)
    assert len(_finished(driver)) == len(QUICK_RECIPES) + PATIENCE
    lax = NoChallengerStopper(margin=1)
    result, driver = fake_search(CloseBehind(), mlflow_uri, experiment, **common, early_stop=lax)
    assert len(_finished(driver)) == 18
    assert result.search_summary().stopped_early is None
    # and where it does stop, it says so in its own terms
    result, _ = fake_search(IncumbentFar(), mlflow_uri, experiment, **common, early_stop=lax)
    reason = result.search_summary().stopped_early
    assert "none completed within 1 standard error of its paired gain of the recipe" in reason


class PrunedAtOnce(optuna.pruners.BasePruner):
    """Prunes every trial it is asked about: recipes are never asked, a deferred
    re-weighting trial not before its re-weighting starts."""

    def prune(self, study, trial) -> bool:
        return True


def test_patience_in_epochs_counts_what_the_sampled_trials_trained(mlflow_uri, experiment):
    """Sampled trials pruned early are fractions of a training (4 epochs here; a deferred
    re-weighting trial is judged from its third): patience 2 in whole trainings stops at the
    first trial that brings them to 8 epochs; patience 2 in trials after 2 trials."""
    common = {"n_trials": 30, "confirm_seeds": 1, "pruner": PrunedAtOnce()}
    by_epochs = NoChallengerStopper(patience=2, evidence="epochs")
    result, driver = fake_search(
        IncumbentFar(), mlflow_uri, experiment, **common, early_stop=by_epochs
    )
    sampled = [t for t in _finished(driver) if keys.RECIPE not in t.user_attrs]
    assert all(t.state == TrialState.PRUNED for t in sampled)
    epochs = [len(t.intermediate_values) for t in sampled]
    assert sum(epochs) >= 8 > sum(epochs[:-1]) and len(sampled) > 2
    reason = result.search_summary().stopped_early
    assert (
        f"after {len(sampled)} sampled trials (0 completed, the others pruned or failed, " in reason
    )
    assert f", {sum(epochs) / 4:.1f} whole trainings' epochs): none completed" in reason
    by_trials = NoChallengerStopper(patience=2)
    _, driver = fake_search(IncumbentFar(), mlflow_uri, experiment, **common, early_stop=by_trials)
    assert sum(keys.RECIPE not in t.user_attrs for t in _finished(driver)) == 2


def test_a_stopper_of_ones_own_is_asked_after_every_trial(mlflow_uri, experiment):
    class AfterThree(BaseStopper):
        def __init__(self):
            self.seen = []

        def reason_to_stop(self, progress):
            self.seen.append(progress.sampled_finished)
            return "three is enough" if progress.sampled_finished >= 3 else None

    stopper = AfterThree()
    result, driver = fake_search(
        FakeRunner(), mlflow_uri, experiment, n_trials=20, early_stop=stopper, confirm_seeds=0
    )
    states = [t.state for t in _finished(driver)]
    assert len(states) == len(QUICK_RECIPES) + 3 and TrialState.COMPLETE in states
    assert stopper.seen[-1] == 3 and result.search_summary().stopped_early == "three is enough"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patience": 0}, "patience: expected an integer >= 1"),
        ({"margin": float("nan")}, "margin: expected a finite number"),
        ({"evidence": "folds"}, r"evidence: expected one of \('trials', 'epochs'\)"),
    ],
)
def test_stopper_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoChallengerStopper(**kwargs)


def test_early_stop_is_checked_before_any_trial():
    from lossearch.api import optimize

    data = (np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="early_stop"):
        optimize(lambda: None, data, early_stop="yes")
    # a stopper on Keras Tuner is honoured now (tests/test_keras_tuner.py), not refused


def test_a_stored_stop_reason_is_a_study_key():
    assert keys.STOPPED_EARLY == "lossearch_stopped_early"
    assert keys.CONTENDERS == "lossearch_contenders"


# -- the rule on its own: records as a search keeps them, no search ----------------------------


def _progress(runner, *records) -> SearchProgress:
    return SearchProgress(records, sampled_finished=PATIENCE, recipes_pending=False, runner=runner)


def _record(runner, number, right, *, recipe=None, family="focal", scores=True):
    """A completed trial whose predictions are right on the validation samples ``right``."""
    y = runner.data.validation_targets
    guess = np.where(right, y, (y + 1) % len(COUNTS))
    probabilities = np.eye(len(COUNTS))[guess] * 0.9 + 0.1 / len(COUNTS)
    params = {"tau": 1.0} if family == "logit_adjusted" else {}
    config = LossConfig(family, params, class_counts=list(COUNTS))
    value = runner.objective(y, probabilities, **runner.context)
    return TrialRecord(number, value, config, {}, recipe, y_prob=probabilities if scores else None)


def test_each_trial_is_judged_by_its_own_paired_gain():
    runner = FakeRunner()
    n = len(runner.data.validation_targets)
    shared = np.arange(n) % 4 != 0  # right on three quarters of the samples
    incumbent = _record(runner, 0, shared, recipe="logit_adjusted", family="logit_adjusted")
    far_ahead = _record(runner, 1, np.ones(n, bool), recipe="focal")  # right everywhere
    one_more = _record(runner, 5, shared | (np.arange(n) == 0))  # one sample more
    stopper = NoChallengerStopper()
    reason = stopper.reason_to_stop(_progress(runner, incumbent, far_ahead, one_more))
    assert reason is not None and "the closest, trial 5, scored" in reason
    assert "(1 completed, the others pruned or failed)" in reason
    assert stopper.contenders(_progress(runner, incumbent, far_ahead, one_more)) == [0, 1]
    clear = _record(runner, 7, np.ones(n, bool))  # a sampled trial right everywhere
    assert stopper.reason_to_stop(_progress(runner, incumbent, one_more, clear)) is None


def test_without_predictions_a_gain_contends_and_no_incumbent_stops_nothing():
    """A trial another worker ran has no predictions here: any gain makes it a contender.
    Without the incumbent's predictions (a resumed search) the rule does not stop."""
    runner = FakeRunner()
    n = len(runner.data.validation_targets)
    shared = np.arange(n) % 4 != 0
    incumbent = _record(runner, 0, shared, recipe="logit_adjusted", family="logit_adjusted")
    elsewhere = _record(runner, 5, shared | (np.arange(n) == 0), scores=False)
    stopper = NoChallengerStopper()
    assert stopper.reason_to_stop(_progress(runner, incumbent, elsewhere)) is None
    behind = _record(runner, 6, shared & (np.arange(n) != 1), scores=False)
    assert stopper.reason_to_stop(_progress(runner, incumbent, behind)) is not None
    resumed = _record(
        runner, 0, shared, recipe="logit_adjusted", family="logit_adjusted", scores=False
    )
    assert stopper.reason_to_stop(_progress(runner, resumed, behind)) is None
