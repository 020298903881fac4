"""The decision rule: NumPy reference, tuning, the Keras layer, and its place in the loss JSON."""

import json

import keras
import numpy as np
import pytest

from lossearch import LossConfig
from lossearch.decision import DECISION_FORMAT, Decision, fit_decision
from lossearch.layers import DecisionLayer, with_decision, without_decision
from lossearch.metrics import OBJECTIVES

COUNTS = [400, 100, 20, 5]


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _prior_skewed(n_per_class=200, seed=0):
    """A Bayes posterior under the training prior: balanced data, skewed probabilities."""
    rng = np.random.default_rng(seed)
    prior = np.array(COUNTS) / sum(COUNTS)
    y = np.repeat(np.arange(len(COUNTS)), n_per_class)
    likelihood = rng.normal(0.0, 1.0, (len(y), len(COUNTS)))
    likelihood[np.arange(len(y)), y] += 2.0
    return y, _softmax(likelihood + np.log(prior))


@pytest.mark.all_backends
def test_logit_adjustment_matches_the_numpy_reference_from_logits_and_probabilities():
    rule = Decision.logit_adjustment(0.7, COUNTS)
    z = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    prior = (np.array(COUNTS) + 0.5) / (sum(COUNTS) + 2.0)
    expected = _softmax(z - 0.7 * np.log(prior))
    assert np.allclose(rule.apply(_softmax(z)), expected, atol=1e-6)
    from_logits = DecisionLayer(rule.to_dict(), from_logits=True)(z)
    from_probs = DecisionLayer(rule.to_dict(), from_logits=False)(_softmax(z).astype("float32"))
    assert np.allclose(keras.ops.convert_to_numpy(from_logits), expected, atol=1e-5)
    assert np.allclose(keras.ops.convert_to_numpy(from_probs), expected, atol=1e-5)


@pytest.mark.all_backends
def test_threshold_moves_the_half_point_to_the_tuned_threshold():
    rule = Decision.thresholds([0.2, 0.7])
    p = np.array([[0.19, 0.69], [0.21, 0.71]], dtype="float32")
    adjusted = rule.apply(p)
    assert (adjusted >= 0.5).tolist() == [[False, False], [True, True]]
    layer = DecisionLayer(rule.to_dict(), from_logits=False)
    assert np.allclose(keras.ops.convert_to_numpy(layer(p)), adjusted, atol=1e-5)
    logits = np.log(p) - np.log1p(-p)
    via_logits = DecisionLayer(rule.to_dict(), from_logits=True)(logits)
    assert np.allclose(keras.ops.convert_to_numpy(via_logits), adjusted, atol=1e-5)


def test_tau_is_near_one_for_a_prior_skewed_posterior_and_near_zero_once_adjusted():
    y, p = _prior_skewed()
    tau = fit_decision(y, p, task="multiclass", class_counts=COUNTS, metric="balanced_accuracy")
    assert 0.7 <= tau.tau <= 1.3
    already = Decision.logit_adjustment(1.0, COUNTS).apply(p)
    again = fit_decision(y, already, task="multiclass", class_counts=COUNTS, metric="x")
    assert again.tau <= 0.3
    # and the adjustment is what balanced accuracy wants here
    from sklearn.metrics import balanced_accuracy_score

    raw = balanced_accuracy_score(y, p.argmax(-1))
    assert balanced_accuracy_score(y, tau.apply(p).argmax(-1)) > raw + 0.05


def test_binary_threshold_for_gmean_and_for_f1():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300), np.ones(30)].astype(int)
    score = np.r_[rng.normal(-2.5, 1, 300), rng.normal(0.5, 1, 30)]
    p = _sigmoid(score - 1.0)[:, None]  # under-confident on the positives
    g = fit_decision(y[:, None], p, task="binary", class_counts=[300, 30], metric="g_mean")
    f1 = OBJECTIVES["minority_f1"]  # the registry routes an F1 objective to the F1 rule
    f = fit_decision(
        y[:, None],
        p,
        task="binary",
        class_counts=[300, 30],
        metric=f1.name,
        threshold_rule=f1.threshold_rule,
    )
    assert g.kind == f.kind == "threshold" and g.threshold[0] < 0.5
    assert f.threshold[0] > g.threshold[0]  # F1 weighs precision: a stricter threshold

    def gmean(t):
        pred = p[:, 0] >= t
        return np.sqrt(pred[y == 1].mean() * (~pred[y == 0]).mean())

    assert gmean(g.threshold[0]) > gmean(0.5) + 0.1


def test_multilabel_gets_one_threshold_per_label():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < [0.5, 0.2, 0.05]).astype(int)
    p = np.clip(0.3 * y + rng.random((200, 3)) * 0.5, 0.01, 0.99)
    rule = fit_decision(y, p, task="multilabel", class_counts=y.sum(0), metric="macro_pr_auc")
    assert len(rule.threshold) == 3


def test_keras_round_trip_keeps_the_rule(tmp_path):
    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    rule = Decision.logit_adjustment(1.0, COUNTS, metric="balanced_accuracy")
    model = with_decision(base, rule, from_logits=True)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.layers[-1].get_config()["decision"] == rule.to_dict()
    raw = without_decision(loaded)
    assert np.allclose(raw.predict(x, verbose=0), base.predict(x, verbose=0), atol=1e-6)
    assert without_decision(base) is base


def test_loss_json_carries_a_versioned_decision_block_and_old_files_still_load(tmp_path):
    rule = Decision.thresholds(0.3, metric="g_mean")
    config = LossConfig("focal", task="binary", class_counts=[90, 10], decision=rule)
    data = json.loads(config.to_json())
    assert data["decision"]["format"] == DECISION_FORMAT
    assert LossConfig.from_json(config.to_json()) == config
    # a file written before the decision block existed
    old = {k: v for k, v in data.items() if k != "decision"}
    assert LossConfig.from_dict(old).decision is None
    assert "decision" not in LossConfig.from_dict(old).to_dict()
    # the rule does not change the loss itself
    assert LossConfig.from_dict(old).build().get_config() == config.build().get_config()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"format": "lossearch.decision/9", "kind": "threshold"}, "format"),
        ({"format": DECISION_FORMAT, "kind": "vote", "threshold": [0.5]}, "decision.kind"),
        ({"format": DECISION_FORMAT, "kind": "threshold", "threshold": [1.5]}, "threshold"),
        ({"format": DECISION_FORMAT, "kind": "logit_adjustment", "tau": "x"}, "decision.tau"),
        ({"format": DECISION_FORMAT, "kind": "threshold", "cutoff": 0.5}, "unknown key"),
        ("0.5", "decision"),
    ],
)
def test_a_malformed_decision_block_is_rejected_by_name(block, message):
    data = {"format": "lossearch.loss/1", "family": "ce", "decision": block}
    with pytest.raises(ValueError, match=message):
        LossConfig.from_dict(data)


def test_a_rule_that_is_not_clearly_better_stays_the_identity():
    """One tail sample cannot justify moving every decision: tau stays 0, threshold 0.5."""
    rng = np.random.default_rng(3)
    y = np.array([0] * 30 + [1] * 10 + [2] * 1)
    p = _softmax(rng.normal(0, 0.3, (len(y), 3)))
    p[np.arange(len(y)), y] += 0.5
    p /= p.sum(-1, keepdims=True)
    p[-1] = [0.5, 0.3, 0.2]  # the lone tail sample, a near miss
    rule = fit_decision(y, p, task="multiclass", class_counts=[300, 100, 10], metric="x")
    assert rule.tau == 0.0
    yb = np.array([0] * 40 + [1] * 2)
    pb = np.r_[rng.uniform(0.0, 0.3, 40), [0.45, 0.6]][:, None]
    assert fit_decision(yb, pb, task="binary", class_counts=[40, 2], metric="g_mean").threshold == (
        0.5,
    )


def _float64_backend() -> bool:
    """JAX computes in float32 unless x64 is enabled."""
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


@pytest.mark.all_backends
def test_a_threshold_leaves_ranking_metrics_unchanged():
    """A threshold is a monotone map of each output, so PR-AUC must not move. On main
    Decision.apply clipped at 1e-7 and the layer's float32 sigmoid reached 1.0 at a logit of
    about 17: confident outputs tied, and a test PR-AUC once moved by 1.2 points."""
    from sklearn.metrics import average_precision_score

    if not _float64_backend():
        pytest.skip("float64 is off on this backend (jax_enable_x64)")
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.1).astype(int)
    z = np.clip(rng.normal(8.0, 9.0, 3000) + 6.0 * y, -30, 30)  # many logits above 17
    rule = Decision.thresholds(0.29)
    p = 1.0 / (1.0 + np.exp(-z))
    assert average_precision_score(y, rule.apply(p[:, None])[:, 0]) == pytest.approx(
        average_precision_score(y, p)
    )
    layer = DecisionLayer(rule.to_dict(), from_logits=True)
    out = keras.ops.convert_to_numpy(layer(z[:, None]))[:, 0]
    assert average_precision_score(y, out) == pytest.approx(average_precision_score(y, z))
    # from float32 probabilities: no tie beyond those the probabilities already have
    p32 = p.astype("float32")
    layer = DecisionLayer(rule.to_dict(), from_logits=False)
    out = keras.ops.convert_to_numpy(layer(p32[:, None]))[:, 0]
    assert average_precision_score(y, out) == pytest.approx(average_precision_score(y, p32))
