"""The selection rule on synthetic candidate tables and a fake trial runner (no training)."""

from types import SimpleNamespace

import numpy as np
import pytest

from lossearch import LossConfig
from lossearch.data import PreparedData, Split
from lossearch.decision import fit_decision
from lossearch.metrics import OBJECTIVES, Objective
from lossearch.runner import TrialOutcome
from lossearch.selection import (
    Candidate,
    Selection,
    baseline_record,
    decide,
    incumbent_record,
    pick_candidates,
    select,
    validation_warnings,
)
from lossearch.selection.confirmation import race
from lossearch.study.state import TrialRecord

BACC = OBJECTIVES["balanced_accuracy"]
PR_AUC = OBJECTIVES["pr_auc"]
COUNTS = [50, 20, 5]
CONFIGS = {
    "ce_baseline": LossConfig("ce"),
    "inverse_weighted_ce": LossConfig("ce", weights="inverse", class_counts=COUNTS),
    "logit_adjusted": LossConfig("logit_adjusted", {"tau": 1.0}, class_counts=COUNTS),
}


def record(number, value, recipe=None, config=None, epochs=10):
    config = config or CONFIGS.get(recipe) or LossConfig("focal", {"gamma": 1.0 + number / 10})
    return TrialRecord(number, value, config, {}, recipe, epochs_trained=epochs)


def study(values_by_recipe, searched=()):
    records = [record(i, v, name) for i, (name, v) in enumerate(values_by_recipe.items())]
    n = len(records)
    return records + [record(n + i, v) for i, v in enumerate(searched)]


def test_the_incumbent_is_declared_per_objective_not_by_score():
    records = study({"ce_baseline": 0.80, "inverse_weighted_ce": 0.79, "logit_adjusted": 0.70})
    multiclass = incumbent_record(records, BACC, "multiclass")
    assert multiclass.recipe == "logit_adjusted"  # the lowest score, still the incumbent
    assert incumbent_record(records, PR_AUC, "binary").recipe == "ce_baseline"
    assert incumbent_record(records, Objective("mcc"), "multiclass").recipe == "ce_baseline"
    without_la = [r for r in records if r.recipe != "logit_adjusted"]
    assert incumbent_record(without_la, BACC, "multiclass").recipe == "ce_baseline"
    assert incumbent_record([record(0, 0.5)], BACC, "multiclass") is None


def test_candidates_are_the_leaders_the_incumbent_the_best_other_recipe_and_the_baseline():
    records = study(
        {"ce_baseline": 0.70, "inverse_weighted_ce": 0.79, "logit_adjusted": 0.72},
        searched=[0.81, 0.80, 0.60, 0.78],
    )
    picked = {r.number: role for r, role in pick_candidates(records, BACC, "multiclass")}
    # leaders 3 (0.81), 4 (0.80), 1 (inverse CE 0.79); incumbent 2; baseline 0
    assert picked == {3: "", 4: "", 1: "", 2: "incumbent", 0: "baseline"}
    binary = {r.number: role for r, role in pick_candidates(records, PR_AUC, "binary")}
    assert binary[0] == "incumbent baseline"
    assert baseline_record(records).recipe == "ce_baseline"


def candidate(values, recipe=None, role="", number=0):
    return Candidate(number, LossConfig("ce"), {}, recipe, values[0], list(values), role=role)


def test_a_challenger_within_noise_keeps_the_incumbent_and_a_clear_one_wins():
    incumbent = candidate([0.76, 0.75, 0.77], "logit_adjusted", "incumbent")
    small = candidate([0.78, 0.77, 0.78], number=7)
    large = candidate([0.90, 0.89, 0.91], number=8)
    assert decide(small, incumbent, 0.02, True, [incumbent, small]).chosen is incumbent
    chosen = decide(large, incumbent, 0.02, True, [incumbent, large])
    assert chosen.chosen is large and chosen.gain == pytest.approx(0.14)
    low = candidate([0.2, 0.2, 0.2], number=9)
    high = candidate([0.5, 0.5, 0.5], "r", "incumbent", number=1)
    assert decide(low, high, 0.01, False, [low, high]).chosen is low  # minimising


class FakeRunner:
    """The parts of a TrialRunner that selection uses; scores are scripted per config."""

    def __init__(self, task, y_val, scripted, epochs=10):
        self.epochs = epochs
        self.data = PreparedData(
            task, "sparse", len(COUNTS), COUNTS, ["a", "b", "c"], [Split(None, None, None, y_val)]
        )
        self.context = {"task": task, "class_names": ["a", "b", "c"], "minority_classes": [2]}
        self.scripted = scripted  # config text -> list of (value, probabilities) per call
        self.calls = []

    def run(self, config, hp=None, seed=None, **_):
        self.calls.append(config.describe())
        value, prob = self.scripted[config.describe()].pop(0)
        return TrialOutcome(value, None, prob, None, prob)

    def fit_decision(self, y_true, y_prob):
        return fit_decision(
            y_true, y_prob, task="multiclass", class_counts=COUNTS, metric="balanced_accuracy"
        )


def _run(y, seed):
    """One run's probabilities, wrong on two random samples, and its balanced accuracy."""
    rng = np.random.default_rng(seed)
    wrong = rng.choice(len(y), 2, replace=False)
    guess = y.copy()
    guess[wrong] = (y[wrong] + 1) % 3
    p = rng.dirichlet([1, 1, 1], size=len(y)) * 0.2
    p[np.arange(len(y)), guess] += 1.0
    p /= p.sum(-1, keepdims=True)
    return BACC(y, p, task="multiclass", class_names=["a", "b", "c"], minority_classes=[2]), p


def _scripted(records, y, runs, first_seed):
    """Each record's search run and ``runs`` confirmation runs, all of one quality."""
    scripted = {}
    for r in records:
        r.value, r.y_prob = _run(y, first_seed + 100 * r.number)
        r.y_score = r.y_prob
        seeds = range(first_seed + 100 * r.number + 1, first_seed + 100 * r.number + 1 + runs)
        scripted[r.config.describe()] = [_run(y, s) for s in seeds]
    return scripted


def test_candidates_within_noise_of_each_other_keep_the_incumbent():
    """The issue's case: one or two tail samples; CE or a lucky trial confirms a hair higher."""
    y = np.array([0] * 10 + [1] * 4 + [2] * 1)
    records = study({"ce_baseline": 0, "logit_adjusted": 0}, searched=[0, 0, 0])
    runner = FakeRunner("multiclass", y, {})
    runner.scripted = _scripted(records, y, 2, first_seed=1)
    picked = race(records, runner, BACC, confirm_seeds=2, seed=0)
    assert picked.leader is not picked.chosen  # someone else confirmed highest ...
    assert picked.chosen.recipe == "logit_adjusted"  # ... but not clearly
    assert "recipe to beat" in picked.reason and "within" in picked.reason
    # like for like: the pick and the baseline have every run; a challenger has them too
    # unless it stopped behind the incumbent
    assert (
        picked.role("baseline").recipe == "ce_baseline" and len(picked.role("baseline").values) == 3
    )
    assert len(picked.chosen.values) == 3
    assert all(len(c.values) == (2 if c.stopped else 3) for c in picked.candidates)
    assert picked.chosen.decision is not None and picked.chosen.decision.kind == "logit_adjustment"


def _scripted_values(records, values_by_number, y):
    """Each record's search value, then its confirmation values, from ``values_by_number``."""
    scripted = {}
    for r in records:
        first, *rest = values_by_number[r.number]
        r.value, r.y_prob = first, _run(y, r.number)[1]
        r.y_score = r.y_prob
        scripted[r.config.describe()] = [
            (v, _run(y, 100 + 10 * r.number + i)[1]) for i, v in enumerate(rest)
        ]
    return scripted


def test_a_challenger_behind_the_incumbent_stops_early_and_a_clear_one_runs_on_and_wins():
    y = np.array([0] * 10 + [1] * 4 + [2] * 1)
    records = study({"ce_baseline": 0, "logit_adjusted": 0}, searched=[0, 0])
    values = {
        0: [0.60, 0.61, 0.59],  # the baseline: below the incumbent, runs on all the same
        1: [0.70, 0.70, 0.71],  # the incumbent
        2: [0.80, 0.55, 0.63],  # a lucky search run: behind after its first confirmation
        3: [0.95, 0.94, 0.96],  # clearly better
    }
    runner = FakeRunner("multiclass", y, _scripted_values(records, values, y))
    picked = race(records, runner, BACC, confirm_seeds=2, seed=0)
    by_number = {c.trial_number: c for c in picked.candidates}
    assert by_number[2].stopped and len(by_number[2].values) == 2
    assert runner.calls.count(records[2].config.describe()) == 1
    assert [len(by_number[n].values) for n in (0, 1, 3)] == [3, 3, 3]
    assert not any(by_number[n].stopped for n in (0, 1, 3))
    assert picked.chosen is by_number[3] and "-> trial 3 is kept" in picked.reason
    assert "stopped early" in picked.reason and "trial 2 (2 runs)" in picked.reason
    assert {row["trial"]: row["stopped"] for row in picked.table()}[2] is True
    for row in picked.table():  # each run's score is kept, for a replay to reweigh
        assert len(row["values"]) == row["runs"]
        assert np.mean(row["values"]) == pytest.approx(row["confirmed_mean"])
    # with one confirmation seed there is no round after which to stop
    records = study({"ce_baseline": 0, "logit_adjusted": 0}, searched=[0, 0])
    runner = FakeRunner("multiclass", y, _scripted_values(records, values, y))
    picked = race(records, runner, BACC, confirm_seeds=1, seed=0)
    assert all(len(c.values) == 2 and not c.stopped for c in picked.candidates)


def test_a_stopped_challenger_is_never_the_leader():
    """Its mean may pass the incumbent's after the incumbent's last run: it still had fewer."""
    y = np.array([0] * 10 + [1] * 4 + [2] * 1)
    records = study({"ce_baseline": 0, "logit_adjusted": 0}, searched=[0])
    values = {0: [0.5, 0.5, 0.5], 1: [0.80, 0.80, 0.50], 2: [0.80, 0.79, 0.0]}
    runner = FakeRunner("multiclass", y, _scripted_values(records, values, y))
    picked = race(records, runner, BACC, confirm_seeds=2, seed=0)
    stopped = next(c for c in picked.candidates if c.trial_number == 2)
    assert stopped.stopped and stopped.mean > picked.chosen.mean
    assert picked.leader is not stopped and picked.chosen.recipe == "logit_adjusted"


def test_a_short_search_run_is_replaced_by_a_full_confirmation_run():
    """Under Hyperband the baseline may have trained 2 of 10 epochs: not averaged in."""
    y = np.array([0] * 10 + [1] * 4 + [2] * 1)
    records = study({"ce_baseline": 0, "logit_adjusted": 0})
    runner = FakeRunner("multiclass", y, {})
    runner.scripted = _scripted(records, y, 3, first_seed=5)
    records[0].epochs_trained, records[0].value = 2, 0.30
    picked = race(records, runner, BACC, confirm_seeds=2, seed=0)
    assert 0.30 not in picked.role("baseline").values and len(picked.role("baseline").values) == 3
    assert runner.calls.count(CONFIGS["ce_baseline"].describe()) == 3
    assert runner.calls.count(CONFIGS["logit_adjusted"].describe()) == 2


def test_validation_warnings_name_the_thin_classes_and_the_ties():
    data = PreparedData(
        "multiclass",
        "sparse",
        3,
        COUNTS,
        ["a", "b", "rare"],
        [Split(None, None, None, np.array([0] * 10 + [1] * 6 + [2] * 2))],
    )
    notes = validation_warnings(data, [record(i, 0.9) for i in range(5)], BACC)
    assert any("rare" in n and "cv=5" in n for n in notes)
    assert any("5 of 5 trials tie" in n for n in notes)
    roomy = SimpleNamespace(**{**data.__dict__})
    roomy.splits = [Split(None, None, None, np.repeat([0, 1, 2], 6))]
    assert validation_warnings(PreparedData(**roomy.__dict__), [record(0, 0.5)], BACC) == []


# -- one owner: select() and what the study keeps of it -----------------------------------------


def test_one_baseline_function_names_plain_ce_whatever_the_order():
    """Main used to have two: one took a smoothed CE listed first, the other the plain one."""
    smoothed = LossConfig("ce", label_smoothing=0.1)
    records = [record(0, 0.6, config=smoothed), record(1, 0.5, config=LossConfig("ce"))]
    assert baseline_record(records).number == 1
    assert baseline_record(list(reversed(records))).number == 1
    picked = select(records, BACC, "best")
    assert picked.baseline is records[1] and picked.baseline_value == 0.5


def test_the_best_rule_reports_one_baseline_trial_and_rebuilds_from_its_dict():
    import json

    records = study({"ce_baseline": 0.70, "logit_adjusted": 0.72}, searched=[0.81])
    for r in records:
        r.metrics = {"summary": {"balanced_accuracy": r.value}, "per_class": {}}
    picked = select(records, BACC, "best")
    assert (picked.rule, picked.chosen.number, picked.runs) == ("best", 2, 1)
    assert picked.baseline.recipe == "ce_baseline"
    assert picked.baseline_metrics["summary"]["balanced_accuracy"] == picked.baseline_value
    stored = json.loads(json.dumps(picked.to_dict()))  # what the study and MLflow keep
    assert stored["trial"] == 2 and stored["baseline_trial"] == 0
    assert Selection.from_dict(stored, records) == picked
    assert Selection.from_dict({**stored, "trial": 99}, records) is None  # not in the study
    older = {k: stored[k] for k in ("trial", "value", "reason", "baseline_value")}
    assert Selection.from_dict(older, records).baseline is records[0]  # kept before 0.2


def test_robust_with_nothing_to_confirm_is_the_top_trial_and_says_why():
    records = study({"ce_baseline": 0.70}, searched=[0.81])
    picked = select(records, BACC, "robust", runner=None)
    assert picked.rule == "best" and "nothing to confirm" in picked.reason
    with pytest.raises(ValueError, match="selection: expected one of"):
        select(records, BACC, "lucky")


def test_the_declared_incumbent_runs_first_whatever_the_budget(mlflow_uri, experiment):
    """On main a 3-trial search ran CE and two weighted CEs, never the logit-adjusted
    incumbent, and said it kept the declared recipe (CE stood in)."""
    from lossearch.search_space import SearchSpace
    from lossearch.selection.roles import recipes_in_running_order
    from lossearch.study.state import RECIPE
    from tests.fakes import FakeRunner, fake_search

    space = SearchSpace.load("long_tail", task="multiclass")
    order = [r.name for r in recipes_in_running_order(space.recipes, BACC, "multiclass")]
    assert order[:2] == ["logit_adjusted", "ce_baseline"]
    assert sorted(order) == sorted(r.name for r in space.recipes)
    order = [
        r.name for r in recipes_in_running_order(space.recipes, Objective("mcc"), "multiclass")
    ]
    assert order[0] == "ce_baseline"  # what that objective declares

    result, driver = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2)
    recipes = [t.user_attrs.get(RECIPE) for t in driver.study.trials]
    assert recipes == ["logit_adjusted", "ce_baseline"]
    assert result.selection.incumbent.recipe == "logit_adjusted"


def test_a_declared_incumbent_that_did_not_complete_is_said_to_have_been_replaced(
    mlflow_uri, experiment
):
    """On main the summary said the declared recipe was kept when CE had stood in for it."""
    from tests.fakes import FakeRunner, fake_search

    runner = FakeRunner(fail=("logit_adjusted",))
    result, _ = fake_search(runner, mlflow_uri, experiment, n_trials=4, confirm_seeds=1)
    assert result.selection.incumbent.recipe == "ce_baseline"
    note = "the declared recipe to beat, 'logit_adjusted', did not complete; recipe "
    assert note + "'ce_baseline' stood in for it" in result.summary()
    fine, _ = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=4, confirm_seeds=1)
    assert "declared recipe to beat" not in fine.summary()


def test_a_recipe_outside_a_narrowed_space_is_skipped_and_the_summary_says_so(
    mlflow_uri, experiment
):
    """From the held-back adversarial set: with focal's gamma narrowed to [0.5, 1.5], the
    focal recipe (gamma 2) ran at 2 without a word. Now it is skipped, and said to be."""
    from lossearch.study.state import CONFIG
    from tests.fakes import FakeRunner, fake_search

    space = {
        "families": {"ce": {}, "focal": {"gamma": {"type": "float", "low": 0.5, "high": 1.5}}},
        "recipes": [
            {"name": "ce_baseline", "family": "ce"},
            {"name": "focal", "family": "focal", "params": {"gamma": 2.0}},
        ],
    }
    result, driver = fake_search(FakeRunner(), mlflow_uri, experiment, space=space, n_trials=4)
    note = "recipe 'focal' skipped: focal.gamma=2.0 is outside the space's"
    assert any(w.startswith(note) for w in result.selection.warnings)
    assert note in result.summary()
    ran = [t.user_attrs[CONFIG] for t in driver.state.trials()]
    gammas = [c["params"]["gamma"] for c in ran if c["family"] == "focal"]
    assert all(0.5 <= g <= 1.5 for g in gammas)  # no trial left the space
    assert "focal" not in {r.recipe for r in result.search.completed_records()}
