"""Every family x label format x from_logits matches the NumPy reference."""

import numpy as np
import pytest

from lossearch.losses import FAMILIES
from tests import reference

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

MULTICLASS_COUNTS = [100, 30, 10, 3]
BINARY_COUNTS = [90, 10]
MULTILABEL_COUNTS = [50, 20, 5]

SOFTMAX = ["ce", "focal", "poly1", "logit_adjusted", "ldam", "vs", "nce"]
SIGMOID = {
    "binary": ["ce", "focal", "poly1", "logit_adjusted", "pos_weighted_bce", "asymmetric"],
    "multilabel": ["ce", "focal", "poly1", "pos_weighted_bce", "asymmetric"],
}

# Non-default parameters for the "tuned" variant (defaults are the other variant).
TUNED = {
    "ce": {},
    "focal": {"gamma": 1.5, "alpha": 0.3},
    "poly1": {"epsilon": 2.0},
    "logit_adjusted": {"tau": 0.7},
    "ldam": {"max_margin": 0.4, "scale": 3.0},
    "vs": {"gamma": 0.2, "tau": 0.5},
    "nce": {"alpha": 0.5, "beta": 2.0},
    "pos_weighted_bce": {"pos_weight": 3.0},
    "asymmetric": {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.1},
}


def _defaults(family):
    return {k: p.default for k, p in FAMILIES[family].params.items() if k != "class_counts"}


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _make_loss(family, params, task, counts, from_logits, weights, smoothing):
    kwargs = dict(params)
    if FAMILIES[family].needs_counts:
        kwargs["class_counts"] = counts
    return FAMILIES[family](
        **kwargs,
        task=task,
        from_logits=from_logits,
        label_smoothing=smoothing,
        class_weights=weights,
        reduction="none",
    )


SOFTMAX_FORMATS = {
    # name: (leading shape, sparse?, extra trailing 1?)
    "sparse": ((8,), True, False),
    "sparse_column": ((8,), True, True),
    "onehot": ((8,), False, False),
    "segmentation_sparse": ((2, 3, 4), True, False),
    "segmentation_onehot": ((2, 3, 4), False, False),
}


@pytest.mark.parametrize("variant", ["defaults", "tuned"])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("label_format", list(SOFTMAX_FORMATS))
@pytest.mark.parametrize("family", SOFTMAX)
def test_softmax_family_matches_reference(family, label_format, from_logits, variant):
    rng = np.random.default_rng(1)
    C = len(MULTICLASS_COUNTS)
    leading, sparse, column = SOFTMAX_FORMATS[label_format]
    z = rng.normal(scale=2.0, size=(*leading, C))
    labels = rng.integers(0, C, size=leading)
    onehot = np.eye(C)[labels]
    y_true = labels[..., None] if column else labels if sparse else onehot
    params = _defaults(family) if variant == "defaults" else {**_defaults(family), **TUNED[family]}
    if variant == "tuned" and family == "focal":
        params["alpha"] = [0.2, 0.5, 1.0, 2.0]  # per-class alpha on softmax
    weights = None if variant == "defaults" else [0.4, 0.8, 1.2, 1.6]
    smoothing = 0.0 if variant == "defaults" else 0.1
    loss = _make_loss(
        family, params, "multiclass", MULTICLASS_COUNTS, from_logits, weights, smoothing
    )
    y_pred = (z if from_logits else _softmax(z)).astype("float32")
    got = np.asarray(loss(y_true, y_pred))
    # From probabilities the logits are log p (the documented convention).
    z_seen = z if from_logits else reference.log_softmax(z)
    want = reference.softmax_loss(
        family, onehot, z_seen, params, weights, smoothing, MULTICLASS_COUNTS
    )
    assert got.shape == leading
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


SIGMOID_FORMATS = {
    "binary": {"flat": (8,), "column": (8, 1), "segmentation": (2, 3, 4, 1)},
    "multilabel": {"multihot": (8, 3), "segmentation": (2, 3, 4, 3)},
}
SIGMOID_CASES = [
    (task, family, fmt)
    for task, families in SIGMOID.items()
    for family in families
    for fmt in SIGMOID_FORMATS[task]
]


@pytest.mark.parametrize("variant", ["defaults", "tuned"])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize(("task", "family", "label_format"), SIGMOID_CASES)
def test_sigmoid_family_matches_reference(task, family, label_format, from_logits, variant):
    rng = np.random.default_rng(2)
    shape = SIGMOID_FORMATS[task][label_format]
    z = rng.normal(scale=2.0, size=shape)
    y = rng.integers(0, 2, size=shape).astype("float64")
    counts = BINARY_COUNTS if task == "binary" else MULTILABEL_COUNTS
    params = _defaults(family) if variant == "defaults" else {**_defaults(family), **TUNED[family]}
    if variant == "tuned" and family == "pos_weighted_bce" and task == "multilabel":
        params["pos_weight"] = [1.0, 2.5, 9.0]
    weights = None
    if variant == "tuned":
        weights = [0.3, 1.7] if task == "binary" else [0.5, 1.0, 1.5]
    smoothing = 0.0 if variant == "defaults" else 0.1
    loss = _make_loss(family, params, task, counts, from_logits, weights, smoothing)
    y_pred = (z if from_logits else reference.sigmoid(z)).astype("float32")
    got = np.asarray(loss(y, y_pred))
    z2, y2 = (z[:, None], y[:, None]) if label_format == "flat" else (z, y)
    want = reference.sigmoid_loss(family, y2, z2, params, task, weights, smoothing, counts)
    assert got.shape == shape[:-1] or (label_format == "flat" and got.shape == shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_asymmetric_without_clip_matches_reference():
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=(6, 3)).astype("float64")
    params = {"gamma_pos": 0.5, "gamma_neg": 3.0, "clip": 0.0}
    loss = _make_loss("asymmetric", params, "multilabel", MULTILABEL_COUNTS, True, None, 0.0)
    want = reference.sigmoid_loss("asymmetric", y, z, params, "multilabel")
    np.testing.assert_allclose(np.asarray(loss(y, z.astype("float32"))), want, rtol=1e-5)
