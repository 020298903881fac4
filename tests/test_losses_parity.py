"""Parity with Keras and TensorFlow losses, and weight formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossearch import LossConfig, weights
from lossearch.losses import CrossEntropy, FocalLoss, LogitAdjustedLoss, PosWeightedBCE
from tests import reference

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

rng = np.random.default_rng(7)
LOGITS = rng.normal(scale=2.0, size=(32, 5)).astype("float32")
LABELS = rng.integers(0, 5, size=32)
ONEHOT = np.eye(5, dtype="float32")[LABELS]
BIN_LOGITS = rng.normal(scale=2.0, size=(32, 1)).astype("float32")
BIN_LABELS = rng.integers(0, 2, size=(32, 1)).astype("float32")


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.5, 1.0), (3.0, 0.6)])
def test_focal_equals_keras_categorical_focal(gamma, alpha):
    ours = FocalLoss(gamma=gamma, alpha=alpha)(ONEHOT, LOGITS)
    theirs = keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma, from_logits=True)(
        ONEHOT, LOGITS
    )
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (1.0, 0.75)])
def test_focal_equals_keras_binary_focal_with_class_balancing(gamma, alpha):
    ours = FocalLoss(gamma=gamma, alpha=alpha, task="binary")(BIN_LABELS, BIN_LOGITS)
    theirs = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=alpha, gamma=gamma, from_logits=True
    )(BIN_LABELS, BIN_LOGITS)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)


@pytest.mark.parametrize("pos_weight", [1.0, 4.0, [0.5, 2.0, 8.0]])
def test_pos_weighted_bce_equals_tf_weighted_cross_entropy(pos_weight):
    logits = rng.normal(size=(16, 3)).astype("float32")
    labels = rng.integers(0, 2, size=(16, 3)).astype("float32")
    ours = PosWeightedBCE(pos_weight=pos_weight, task="multilabel", reduction="none")(
        labels, logits
    )
    theirs = tf.nn.weighted_cross_entropy_with_logits(
        labels, logits, pos_weight=np.asarray(pos_weight, dtype="float32")
    )
    np.testing.assert_allclose(np.asarray(ours), tf.reduce_mean(theirs, -1).numpy(), rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_ce_equals_keras_crossentropies(smoothing):
    ours = CrossEntropy(label_smoothing=smoothing)
    cce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    np.testing.assert_allclose(float(ours(ONEHOT, LOGITS)), float(cce(ONEHOT, LOGITS)), rtol=1e-5)
    if not smoothing:
        scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        np.testing.assert_allclose(
            float(ours(LABELS, LOGITS)), float(scce(LABELS, LOGITS)), rtol=1e-5
        )
    bce = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=smoothing)
    ours_bin = CrossEntropy(task="binary", label_smoothing=smoothing)
    np.testing.assert_allclose(
        float(ours_bin(BIN_LABELS, BIN_LOGITS)), float(bce(BIN_LABELS, BIN_LOGITS)), rtol=1e-5
    )


def test_ce_from_softmax_model_output_equals_keras():
    probs = keras.layers.Softmax()(LOGITS)
    ours = CrossEntropy(from_logits=False)(LABELS, probs)
    theirs = keras.losses.SparseCategoricalCrossentropy()(LABELS, probs)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)


def test_logit_adjusted_tau_one_is_balanced_softmax():
    counts = np.array([500, 120, 40, 9, 2], dtype=np.float64)
    ours = LogitAdjustedLoss(class_counts=counts.tolist(), tau=1.0, reduction="none")(
        LABELS, LOGITS
    )
    # Balanced Softmax (Ren et al. 2020): p_y = n_y e^{z_y} / sum_j n_j e^{z_j}.
    z = LOGITS.astype(np.float64)
    balanced = -np.log(
        counts[LABELS] * np.exp(z[np.arange(32), LABELS]) / (counts * np.exp(z)).sum(-1)
    )
    np.testing.assert_allclose(np.asarray(ours), balanced, rtol=1e-5)


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_effective_number_weights_match_formula(beta):
    counts = [5000, 800, 60, 7]
    got = weights.class_weights("effective_number", counts, beta=beta)
    np.testing.assert_allclose(got, reference.effective_number_weights(counts, beta), rtol=1e-9)
    assert got.mean() == pytest.approx(1.0)


def test_effective_number_beta_to_zero_is_uniform():
    for beta in (0.0, 1e-12):
        np.testing.assert_allclose(
            weights.class_weights("effective_number", [5000, 7, 1], beta=beta), 1.0, rtol=1e-9
        )


def test_inverse_weights_match_scikit_learn_balanced():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.repeat([0, 1, 2], [300, 50, 5])
    sk = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(weights.class_weights("inverse", [300, 50, 5], normalize="none"), sk)
    ours = weights.class_weights("inverse", [300, 50, 5])
    np.testing.assert_allclose(ours, sk * 3 / sk.sum())


def test_normalize_sum_gives_the_seed_articles_normalized_weights():
    counts = np.array([300.0, 50.0, 5.0])
    expected = (1 / counts) / (1 / counts).sum()
    np.testing.assert_allclose(weights.class_weights("inverse", counts, normalize="sum"), expected)


@pytest.mark.parametrize(
    "scheme", ["inverse", "inverse_sqrt", "effective_number", "median_frequency"]
)
def test_weighted_config_loss_is_weighted_ce(scheme):
    counts = [400, 80, 30, 10, 3]
    config = LossConfig("ce", weights=scheme, class_counts=counts)
    w = weights.class_weights(scheme, counts)
    assert w.mean() == pytest.approx(1.0)
    got = config.build()(LABELS, LOGITS)
    want = np.mean(reference.softmax_loss("ce", ONEHOT.astype(float), LOGITS.astype(float), {}, w))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
