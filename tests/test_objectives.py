"""The objective registry: every entry against scikit-learn, its streaming metric, the
incumbent and threshold rule it implies, and a new entry flowing everywhere at once."""

import numpy as np
import pytest
from sklearn import metrics as skm

from lossearch import LossConfig
from lossearch.decision import fit_decision
from lossearch.metrics import (
    OBJECTIVES,
    Objective,
    evaluate,
    resolve_objective,
    scalar_metric,
    summary_metrics,
)
from lossearch.selection import incumbent_record
from lossearch.study.state import TrialRecord

NAMES = ["a", "b", "c", "d"]
CONTEXT = {"task": "multiclass", "class_names": NAMES, "minority_classes": [2, 3]}


def _predictions(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=n, p=[0.55, 0.25, 0.15, 0.05])
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y, p


def _reference(name, y, p):
    """What scikit-learn says each registered objective is."""
    pred = p.argmax(-1)
    recall = skm.recall_score(y, pred, average=None, labels=range(4), zero_division=0)
    f1 = skm.f1_score(y, pred, average=None, labels=range(4), zero_division=0)
    ap = [skm.average_precision_score(y == c, p[:, c]) for c in range(4)]
    return {
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro", labels=range(4), zero_division=0),
        "minority_recall": recall[[2, 3]].mean(),
        "minority_f1": f1[[2, 3]].mean(),
        "worst_class_recall": recall.min(),
        "g_mean": float(np.exp(np.mean(np.log(recall)))) if recall.min() > 0 else 0.0,
        "mcc": skm.matthews_corrcoef(y, pred),
        "pr_auc": np.mean([ap[2], ap[3]]),
        "macro_pr_auc": np.mean(ap),
    }[name]


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_registered_objective_is_what_scikit_learn_computes(name):
    y, p = _predictions()
    expected = _reference(name, y, p)
    assert scalar_metric(name, y, p, **CONTEXT) == pytest.approx(expected)
    assert evaluate(y, p, **CONTEXT).summary[name] == pytest.approx(expected)
    assert resolve_objective(name, "multiclass") is OBJECTIVES[name]
    assert Objective(name) == OBJECTIVES[name]  # a registered name is its entry


@pytest.mark.parametrize("name", [n for n, o in OBJECTIVES.items() if o.streaming])
def test_a_streaming_objective_agrees_with_its_scalar_over_batches(name):
    y, p = _predictions(seed=1)
    metric = OBJECTIVES[name].streaming_metric(4, [2, 3], 0.5)
    assert metric.name == name  # the epoch logs carry val_<name>
    for start in range(0, len(y), 64):
        metric.update_state(y[start : start + 64], p[start : start + 64].astype("float32"))
    assert float(metric.result()) == pytest.approx(scalar_metric(name, y, p, **CONTEXT), abs=1e-5)


def test_the_incumbent_and_the_threshold_rule_follow_the_registry():
    counts = [300, 100, 40, 10]
    records = [
        TrialRecord(0, 0.5, LossConfig("ce"), {}, "ce_baseline"),
        TrialRecord(
            1, 0.4, LossConfig("logit_adjusted", {"tau": 1.0}, class_counts=counts), {}, "la"
        ),
    ]
    for name, objective in OBJECTIVES.items():
        incumbent = incumbent_record(records, objective, "multiclass")
        assert incumbent.number == (1 if objective.class_averaged else 0), name
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300), np.ones(30)].astype(int)[:, None]
    p = 1 / (1 + np.exp(-(np.r_[rng.normal(-2.5, 1, 300), rng.normal(0.5, 1, 30)] - 1.0)))
    thresholds = {
        name: fit_decision(
            y,
            p[:, None],
            task="binary",
            class_counts=[300, 30],
            metric=name,
            threshold_rule=o.threshold_rule,
        ).threshold[0]
        for name, o in OBJECTIVES.items()
    }
    f1_like = {n for n, o in OBJECTIVES.items() if o.threshold_rule == "f1"}
    assert f1_like == {"macro_f1", "minority_f1"}
    assert len({thresholds[n] for n in f1_like}) == 1
    assert len({t for n, t in thresholds.items() if n not in f1_like}) == 1
    assert thresholds["minority_f1"] > thresholds["g_mean"]  # F1 weighs precision


def test_summaries_show_the_marked_objectives_and_the_searched_one():
    shown = summary_metrics("balanced_accuracy")
    assert shown == [n for n, o in OBJECTIVES.items() if o.in_summary]
    assert summary_metrics("mcc") == [*shown, "mcc"]
    assert summary_metrics("my_own") == shown  # a callable objective has no summary value


def test_a_new_entry_is_scored_incumbent_ruled_and_shown_everywhere(monkeypatch):
    """Adding an objective is one entry: evaluation, resolution, the incumbent and the
    summary all read it."""
    entry = Objective(
        "recall_of_d",
        metric=lambda p: float(p.recall[3]),
        class_averaged=True,
        in_summary=True,
    )
    monkeypatch.setitem(OBJECTIVES, entry.name, entry)
    y, p = _predictions()
    expected = skm.recall_score(y == 3, p.argmax(-1) == 3)
    assert evaluate(y, p, **CONTEXT).summary["recall_of_d"] == pytest.approx(expected)
    assert resolve_objective("recall_of_d", "multiclass") is entry
    assert "recall_of_d" in summary_metrics("balanced_accuracy")
    records = [
        TrialRecord(0, 0.5, LossConfig("ce"), {}, "ce_baseline"),
        TrialRecord(
            1, 0.4, LossConfig("logit_adjusted", {"tau": 1.0}, class_counts=[9] * 4), {}, "la"
        ),
    ]
    assert incumbent_record(records, entry, "multiclass").number == 1


def test_bad_objectives_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="unknown objective 'auc'"):
        Objective("auc")
    with pytest.raises(ValueError, match="direction must be"):
        Objective("x", "up", fn=lambda y, p: 0.0)
    with pytest.raises(ValueError, match="threshold_rule must be one of"):
        Objective("x", fn=lambda y, p: 0.0, threshold_rule="youden")


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("seed", range(6))
def test_per_class_counts_equal_scikit_learn_with_missing_and_unpredicted_classes(task, seed):
    """Counted directly since it is scored after every epoch: the same numbers as
    ``precision_recall_fscore_support(..., zero_division=0)``, zeros included."""
    from lossearch.metrics.predictions import Predictions

    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(3, 60)), 5
    if task == "multiclass":
        y, p = rng.choice(k - 1, n), rng.dirichlet(np.ones(k) * 0.3, n)  # class 4 absent
        labels, names = np.arange(k), [str(c) for c in range(k)]
    elif task == "binary":
        y, p = rng.integers(0, 2, (n, 1)), rng.random((n, 1)) ** 3
        labels, names = np.arange(2), ["0", "1"]
    else:
        y, p = (rng.random((n, k)) < 0.2).astype(int), rng.random((n, k))
        labels, names = None, [str(c) for c in range(k)]
    ours = Predictions(y, p, task=task, class_names=names, minority_classes=[1])
    expected = skm.precision_recall_fscore_support(
        ours.y_true, ours.y_pred, labels=labels, zero_division=0
    )
    for got, want in zip(ours.per_class, expected, strict=True):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("seed", range(8))
def test_average_precision_equals_scikit_learn_with_ties(seed):
    from lossearch.metrics.predictions import average_precision

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    y = rng.random(n) < rng.uniform(0.02, 0.6)
    y[rng.integers(n)] = True  # at least one positive
    score = np.round(rng.random(n), int(rng.integers(1, 4)))  # coarse scores: many ties
    assert average_precision(y, score) == pytest.approx(skm.average_precision_score(y, score))
    assert np.isnan(average_precision(np.zeros(n), score))
