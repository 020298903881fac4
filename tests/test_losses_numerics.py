"""Finite gradients at extreme logits; absent classes are safe."""

import numpy as np
import pytest

from lossearch import SCHEMES, LossConfig
from lossearch.losses import FAMILIES
from tests.backend import value_and_grad

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

COUNTS = {"multiclass": [1000, 100, 10], "binary": [990, 10], "multilabel": [500, 50, 5]}


def _all_cases():
    for family, cls in FAMILIES.items():
        for task in cls.tasks:
            yield family, task


def _inputs(task, scale):
    # Half the samples confidently right, half confidently wrong, at |z| = scale.
    if task == "multiclass":
        labels = np.array([0, 1, 2, 0, 1, 2])
        z = np.full((6, 3), -scale, dtype="float32")
        z[np.arange(6), labels] = scale
        z[3:] = -z[3:]
        return labels, z
    width = 1 if task == "binary" else 3
    labels = np.array([[1.0] * width, [0.0] * width, [1.0] * width, [0.0] * width])
    z = np.where(labels > 0, scale, -scale).astype("float32")
    z[2:] = -z[2:]
    return labels.astype("float32"), z


def _grad(loss, labels, logits):
    return value_and_grad(lambda z: loss(labels, z), logits)


@pytest.mark.parametrize(("family", "task"), list(_all_cases()))
@pytest.mark.parametrize("scale", [30.0, 1e-3])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_gradients_finite_at_extreme_logits(family, task, scale, smoothing):
    config = LossConfig(
        family, task=task, class_counts=COUNTS[task], weights="inverse", label_smoothing=smoothing
    )
    value, grad = _grad(config.build(), *_inputs(task, scale))
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("gamma", [0.2, 0.5])
@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_focal_small_gamma_gradients_finite_when_confident(gamma, task):
    loss = LossConfig("focal", {"gamma": gamma}, task=task).build()
    for scale in (30.0, 60.0, 100.0):
        value, grad = _grad(loss, *_inputs(task, scale))
        assert np.isfinite(value) and np.all(np.isfinite(grad)), (scale, grad)


@pytest.mark.parametrize("gamma", [0.2, 0.5])
def test_asymmetric_small_gammas_finite(gamma):
    loss = LossConfig(
        "asymmetric", {"gamma_pos": gamma, "gamma_neg": gamma, "clip": 0.0}, task="multilabel"
    ).build()
    value, grad = _grad(loss, *_inputs("multilabel", 30.0))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def _scheme_params(scheme, task):
    if scheme == "manual":
        return {"values": [1.0, 2.0] if task == "binary" else [1.0, 2.0, 3.0]}
    return {}


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize(("family", "task"), list(_all_cases()))
def test_batch_without_a_class_is_finite(scheme, family, task):
    config = LossConfig(
        family,
        task=task,
        class_counts=COUNTS[task],
        weights=scheme,
        weight_params=_scheme_params(scheme, task),
    )
    rng = np.random.default_rng(0)
    if task == "multiclass":
        labels = np.array([0, 0, 1, 0])  # class 2 absent
        logits = rng.normal(size=(4, 3)).astype("float32")
    else:
        width = 1 if task == "binary" else 3
        labels = np.zeros((4, width), dtype="float32")  # no positive at all
        logits = rng.normal(size=(4, width)).astype("float32")
    value, grad = _grad(config.build(), labels, logits)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_batch_scheme_weights_present_classes_by_inverse_frequency():
    from lossearch.weights import batch_class_weights

    labels = np.eye(3, dtype="float32")[[0, 0, 0, 1]]
    w = np.asarray(batch_class_weights(labels, task="multiclass", smoothing=0.0))
    assert w[2] == 0.0  # absent: no samples to weight, no inf
    np.testing.assert_allclose(w[:2], [0.5, 1.5])  # 1/3 : 1/1, mean 1 over present classes


def test_log1m_softmax_is_exact_from_ties_to_large_gaps():
    """log(1 - p) for the confident class comes from the other classes' mass, never 1 - p."""
    from keras import ops

    from lossearch.losses._inputs import log_softmax_and_log1m

    rows = [[0.0, 0.0, -1.0], [2.0, 2.0, 2.0], [0.3, 0.0, -5.0], [20.0, 0.0, -3.0]]
    rows += [[gap, 0.0, -gap] for gap in (40.0, 80.0)]
    z = np.array(rows, dtype="float64")
    top = z.max(-1, keepdims=True)
    log_p = z - (top + np.log(np.exp(z - top).sum(-1, keepdims=True)))
    # float64 references: the others' log-mass for the confident class, log1p(-p) elsewhere.
    others = np.array([[np.log(np.exp(np.delete(r, i)).sum()) for i in range(3)] for r in z])
    confident = log_p > np.log(0.5)
    with np.errstate(divide="ignore"):  # log1p(-1) in the branch np.where drops
        expected = np.where(confident, others - (z - log_p), np.log1p(-np.exp(log_p)))
    expected = expected.astype("float32")  # what float32 can hold (3e-70 is 0 there)
    got_log_p, got_log_1m_p = log_softmax_and_log1m(ops.convert_to_tensor(z.astype("float32")))
    np.testing.assert_allclose(ops.convert_to_numpy(got_log_p), log_p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(got_log_1m_p), expected, rtol=1e-5)
