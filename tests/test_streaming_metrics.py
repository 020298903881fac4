"""Streaming Keras metrics equal scikit-learn's values over several batches of a real evaluate."""

import keras
import numpy as np
import pytest
from sklearn import metrics as skm

from lossearch.metrics import BalancedAccuracy, GMean, MacroF1, MinorityRecall, WorstClassRecall
from tests.helpers import mlp

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)


def _gmean(y, pred, classes):
    recalls = skm.recall_score(y, pred, labels=classes, average=None, zero_division=0)
    present = np.isin(classes, np.unique(y))
    recalls = recalls[present]
    return 0.0 if np.any(recalls == 0) else float(np.exp(np.mean(np.log(recalls))))


def _expected(y, pred, num_classes, minority):
    classes = np.arange(num_classes)
    present = np.isin(classes, np.unique(y))
    recalls = skm.recall_score(y, pred, labels=classes, average=None, zero_division=0)
    return {
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro"),
        "minority_recall": skm.recall_score(
            y, pred, labels=minority, average="macro", zero_division=0
        ),
        "worst_class_recall": recalls[present].min(),
        "g_mean": _gmean(y, pred, classes),
    }


def _metrics(num_classes, minority, threshold=0.5):
    return [
        BalancedAccuracy(num_classes, threshold),
        MacroF1(num_classes, threshold),
        MinorityRecall(num_classes, minority, threshold),
        WorstClassRecall(num_classes, threshold),
        GMean(num_classes, threshold),
    ]


@pytest.mark.parametrize("labels", ["sparse", "onehot"])
def test_multiclass_streaming_metrics_equal_scikit_learn(labels):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 8)).astype("float32")
    y = rng.choice(4, size=203, p=[0.6, 0.25, 0.1, 0.05])
    model = mlp(8, 4)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy"
        if labels == "sparse"
        else "categorical_crossentropy",
        metrics=_metrics(4, [2, 3]),
    )
    model.fit(x, y if labels == "sparse" else np.eye(4)[y], epochs=3, verbose=0)
    target = y if labels == "sparse" else np.eye(4)[y]
    logs = model.evaluate(x, target, batch_size=16, verbose=0, return_dict=True)  # 13 batches
    pred = np.asarray(model.predict(x, verbose=0)).argmax(-1)
    for name, value in _expected(y, pred, 4, [2, 3]).items():
        assert logs[name] == pytest.approx(value, abs=1e-6), name


def test_binary_streaming_metrics_equal_scikit_learn():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 5)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=150) > 1.0).astype("float32")
    model = mlp(5, 1)  # logits: threshold 0
    model.compile(
        optimizer="adam",
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=_metrics(2, [1], threshold=0.0),
    )
    model.fit(x, y, epochs=5, verbose=0)
    logs = model.evaluate(x, y, batch_size=20, verbose=0, return_dict=True)
    pred = (np.asarray(model.predict(x, verbose=0)).ravel() > 0).astype(int)
    for name, value in _expected(y.astype(int), pred, 2, [1]).items():
        assert logs[name] == pytest.approx(value, abs=1e-6), name
    # integer 0/1 labels, as numpy gives them, count the same
    as_ints = model.evaluate(x, y.astype("int64"), batch_size=20, verbose=0, return_dict=True)
    assert as_ints == pytest.approx(logs)


def test_state_resets_and_serializes():
    metric = MinorityRecall(3, [2], name="rare_recall")
    metric.update_state(np.array([0, 2, 2]), np.eye(3)[[0, 2, 1]])
    assert float(metric.result()) == pytest.approx(0.5)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    clone = MinorityRecall.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    ).classes == [2]


@pytest.mark.all_backends
def test_a_binary_logits_model_is_cut_at_logit_zero_with_from_logits():
    """On main only threshold= existed, in output units: on logits, 0.5 cut at p = 0.62."""
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype("int64")
    logits = (rng.normal(size=400) + 1.2 * y - 0.4).astype("float32")
    expected = balanced_accuracy_score(y, logits > 0)
    metric = BalancedAccuracy(2, from_logits=True)
    metric.update_state(y, logits[:, None])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    assert BalancedAccuracy.from_config(metric.get_config()).cut == 0.0
    probabilities = BalancedAccuracy(2)  # a sigmoid output: cut at 0.5 as before
    probabilities.update_state(y, (1 / (1 + np.exp(-logits)))[:, None])
    assert float(probabilities.result()) == pytest.approx(expected, abs=1e-6)
