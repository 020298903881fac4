"""The data boundary: splits, task inference, dense outputs."""

import keras
import numpy as np
import pytest

from lossearch.data import prepare_data, stratified_holdout
from tests.search_helpers import tiny_search


def test_holdout_puts_every_class_with_two_or_more_samples_on_both_sides():
    key = np.repeat(np.arange(5), [200, 40, 7, 3, 2])
    for seed in range(20):
        train, val = stratified_holdout(key, 0.2, seed)
        assert len(set(train) | set(val)) == len(key) and not set(train) & set(val)
        assert set(np.unique(key[train])) == set(range(5)) == set(np.unique(key[val]))
        assert abs(len(val) - 0.2 * len(key)) <= 5


@pytest.mark.parametrize(
    ("y", "shape", "activation", "task", "fmt"),
    [
        (np.array([0, 1, 2, 1]), (None, 3), None, "multiclass", "sparse"),
        (np.array([[0], [1], [2], [1]]), (None, 3), None, "multiclass", "sparse"),
        (np.eye(3)[[0, 1, 2, 1]], (None, 3), "softmax", "multiclass", "onehot"),
        (np.eye(3)[[0, 1, 2, 1]], (None, 3), "sigmoid", "multilabel", "multihot"),
        (
            np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]]),
            (None, 3),
            None,
            "multilabel",
            "multihot",
        ),
        (np.array([0, 1, 1, 0]), (None, 1), "sigmoid", "binary", "binary"),
    ],
)
def test_task_inference(y, shape, activation, task, fmt):
    x = np.zeros((len(y), 2), "float32")
    data = ((x, y), (x, y))
    prepared = prepare_data(data, output_shape=shape, activation=activation)
    assert (prepared.task, prepared.label_format) == (task, fmt)


@pytest.mark.slow
def test_dense_per_pixel_outputs_search_end_to_end(mlflow_uri, experiment):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4, 4, 2)).astype("float32")
    # per-pixel classes from the first channel, class 2 rare
    y = np.digitize(x[..., 0], [0.0, 1.6]).astype("int64")

    def build_model():
        return keras.Sequential(
            [
                keras.Input((4, 4, 2)),
                keras.layers.Conv2D(8, 1, activation="relu"),
                keras.layers.Conv2D(3, 1),
            ]
        )

    result = tiny_search(
        mlflow_uri,
        experiment,
        build_model=build_model,
        data=(x, y),
        n_trials=2,
        selection="best",
        refit=False,
    )
    assert result.best_config.task == "multiclass"
    per_class = result.best_metrics["per_class"]
    assert sum(v["support"] for v in per_class.values()) % 16 == 0  # pixels of whole images
    assert per_class["2"]["support"] > 0


def test_cv_auto_scores_out_of_fold_only_when_a_hold_out_would_starve_a_class():
    from lossearch.data import auto_folds

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [100, 40, 6])
    x = rng.normal(size=(len(y), 4)).astype("float32")
    prepared = prepare_data((x, y), output_shape=(None, 3), activation=None, cv="auto", seed=0)
    assert prepared.cv == 3 and len(prepared.splits) == 3
    assert "class '2' would have 1 validation sample(s)" in prepared.scoring
    roomy = np.repeat([0, 1, 2], [100, 40, 30])
    x = rng.normal(size=(len(roomy), 4)).astype("float32")
    held = prepare_data((x, roomy), output_shape=(None, 3), activation=None, cv="auto", seed=0)
    assert held.cv is None and held.scoring == "one validation split"
    # two samples in the rarest class: two folds; an explicit validation= keeps the hold-out
    assert auto_folds(np.array([50, 2]), ["a", "b"])[0] == 2
    x = rng.normal(size=(len(y), 4)).astype("float32")
    kept = prepare_data(
        (x, y), output_shape=(None, 3), activation=None, cv="auto", validation=0.3, seed=0
    )
    assert kept.cv is None


def _tf():
    import tensorflow as tf

    return tf


@pytest.mark.parametrize(
    ("head", "activation"),
    [
        (lambda: keras.layers.Dense(10, activation="softmax"), "softmax"),
        (lambda: keras.Sequential([keras.layers.Dense(10), keras.layers.Softmax()]), "softmax"),
        (lambda: keras.Sequential([keras.layers.Dense(3, activation="sigmoid")]), "sigmoid"),
        (lambda: keras.layers.Dense(10), None),
        # activations given as functions, not names: on main a softmax was refused and a
        # sigmoid in a lambda was read as logits, silently
        (lambda: keras.layers.Dense(10, activation=_tf().nn.softmax), "softmax"),
        (lambda: keras.layers.Dense(10, activation=lambda x: keras.ops.softmax(x)), "softmax"),
        (lambda: keras.layers.Lambda(keras.ops.softmax), "softmax"),
        (lambda: keras.layers.Dense(1, activation=lambda x: keras.ops.sigmoid(x)), "sigmoid"),
        (lambda: keras.layers.Lambda(keras.ops.sigmoid), "sigmoid"),
        (lambda: keras.layers.Dense(3, activation=_tf().math.sigmoid), "sigmoid"),
    ],
    ids=[
        "dense softmax",
        "nested model ending in Softmax",
        "nested sigmoid",
        "logits",
        "tf.nn.softmax",
        "softmax lambda",
        "softmax Lambda layer",
        "sigmoid lambda",
        "sigmoid Lambda layer",
        "tf.math.sigmoid",
    ],
)
def test_the_probe_sees_the_output_activation_through_nested_models(head, activation):
    from lossearch.models import model_builder, probe_model

    def build():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), head()])

    assert probe_model(model_builder(build)).activation == activation


def test_text_labels_become_class_indices_and_names():
    """On main `["fraud", "ok", ...]` was refused: 'training y must hold numeric labels'."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    binary = prepare_data(
        (x, ["ok"] * 50 + ["fraud"] * 10), output_shape=(None, 1), activation=None, seed=0
    )
    assert binary.class_names == ["ok", "fraud"]  # on one unit the rarer label is positive
    assert binary.class_counts == [40, 8]
    labels = np.array(["cat"] * 30 + ["dog"] * 20 + ["emu"] * 10)
    sorted_ = prepare_data((x, labels), output_shape=(None, 3), activation=None, seed=0)
    assert sorted_.class_names == ["cat", "dog", "emu"] and sorted_.class_counts == [24, 16, 8]
    ordered = prepare_data(
        ((x, labels), (x[:30], labels[::2])),
        output_shape=(None, 3),
        activation=None,
        class_names=["emu", "dog", "cat"],
    )
    assert ordered.class_names == ["emu", "dog", "cat"] and ordered.class_counts == [10, 20, 30]
    assert set(ordered.splits[0].y_val.tolist()) == {0, 1, 2}


def test_task_settles_what_the_rows_leave_open_and_must_fit_the_rest():
    """One-hot rows but one with two ones, on a logits output: on main the whole search
    turned multi-label silently; now an error names the row, and task= decides."""
    y = np.eye(4)[np.arange(200) % 4]
    y[7, (np.argmax(y[7]) + 1) % 4] = 1
    x = np.random.default_rng(0).normal(size=(200, 3)).astype("float32")
    common = {"output_shape": (None, 4), "activation": None, "seed": 0}
    with pytest.raises(ValueError, match=r"row\(s\) 7 \(2 ones\).*task= settles it"):
        prepare_data((x, y), **common)
    assert prepare_data((x, y), **common, task="multilabel").task == "multilabel"
    with pytest.raises(ValueError, match="but task='multiclass': one class per sample"):
        prepare_data((x, y), **common, task="multiclass")
    sparse = np.arange(200) % 4
    with pytest.raises(ValueError, match="task: 'multilabel' does not fit labels of shape"):
        prepare_data((x, sparse), **common, task="multilabel")
    assert prepare_data((x, sparse), **common, task="multiclass").task == "multiclass"
