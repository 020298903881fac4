"""LossConfig, the loss classes and the weight schemes reject bad values, naming the field."""

import json

import pytest

from lossearch import LossConfig, load_loss
from lossearch.losses import FocalLoss
from lossearch.weights import class_weights

C3 = [100, 10, 1]

BAD_CONFIGS = [
    # (description, kwargs, field named in the message)
    ("unknown family", {"family": "dice"}, "family"),
    ("unknown scheme", {"weights": "sqrt"}, "weights"),
    ("unknown param", {"family": "focal", "params": {"gama": 2}}, "gama"),
    ("param of another family", {"family": "ce", "params": {"gamma": 2}}, "params"),
    (
        "unknown weight param",
        {"weights": "inverse", "weight_params": {"b": 1}, "class_counts": C3},
        "weight_params",
    ),
    ("negative gamma", {"family": "focal", "params": {"gamma": -1.0}}, "params.gamma"),
    ("gamma not a number", {"family": "focal", "params": {"gamma": "2"}}, "params.gamma"),
    ("gamma is nan", {"family": "focal", "params": {"gamma": float("nan")}}, "params.gamma"),
    (
        "beta is 1",
        {"weights": "effective_number", "weight_params": {"beta": 1.0}, "class_counts": C3},
        "weight_params.beta",
    ),
    (
        "beta negative",
        {"weights": "effective_number", "weight_params": {"beta": -0.1}, "class_counts": C3},
        "weight_params.beta",
    ),
    ("label smoothing 1", {"label_smoothing": 1.0}, "label_smoothing"),
    ("label smoothing negative", {"label_smoothing": -0.1}, "label_smoothing"),
    ("negative count", {"class_counts": [10, -1, 3]}, "class_counts"),
    ("zero count", {"class_counts": [10, 0, 3], "class_names": ["cat", "dog", "eel"]}, "'dog'"),
    ("fractional count", {"class_counts": [10, 2.5]}, "class_counts"),
    ("asymmetric on multiclass", {"family": "asymmetric"}, "family"),
    ("pos_weighted_bce on multiclass", {"family": "pos_weighted_bce"}, "family"),
    ("ldam on binary", {"family": "ldam", "task": "binary", "class_counts": [9, 1]}, "family"),
    ("unknown task", {"task": "regression"}, "task"),
    ("family needs counts", {"family": "logit_adjusted"}, "class_counts"),
    ("scheme needs counts", {"weights": "inverse"}, "class_counts"),
    ("binary needs two counts", {"task": "binary", "class_counts": [5, 3, 1]}, "class_counts"),
    ("names and counts differ", {"class_counts": C3, "class_names": ["a", "b"]}, "class_names"),
    ("duplicate names", {"class_counts": [3, 2], "class_names": ["a", "a"]}, "class_names"),
    (
        "alpha per class wrong length",
        {"family": "focal", "params": {"alpha": [1, 2]}, "class_counts": C3},
        "params.alpha",
    ),
    (
        "manual weights wrong length",
        {"weights": "manual", "weight_params": {"values": [1, 2]}, "class_counts": C3},
        "weight_params.values",
    ),
    ("manual weights missing", {"weights": "manual"}, "weight_params.values"),
    (
        "manual weight zero",
        {"weights": "manual", "weight_params": {"values": [1, 0, 2]}},
        "weight_params.values",
    ),
    (
        "normalize unknown",
        {"weights": "inverse", "weight_params": {"normalize": "max"}, "class_counts": C3},
        "weight_params.normalize",
    ),
    (
        "batch smoothing negative",
        {"weights": "batch", "weight_params": {"smoothing": -1}},
        "weight_params.smoothing",
    ),
    ("drw without weights", {"drw_start": 3}, "drw_start"),
    ("drw negative", {"drw_start": -1, "weights": "inverse", "class_counts": C3}, "drw_start"),
    (
        "drw fraction above 1",
        {"drw_start": 1.5, "weights": "inverse", "class_counts": C3},
        "drw_start",
    ),
    (
        "asl clip 1",
        {"family": "asymmetric", "task": "multilabel", "params": {"clip": 1.0}},
        "params.clip",
    ),
    (
        "ldam margin 0",
        {"family": "ldam", "params": {"max_margin": 0}, "class_counts": C3},
        "params.max_margin",
    ),
    (
        "pos_weight negative",
        {"family": "pos_weighted_bce", "task": "binary", "params": {"pos_weight": -2}},
        "params.pos_weight",
    ),
    (
        "balanced pos_weight needs counts",
        {"family": "pos_weighted_bce", "task": "binary", "params": {"pos_weight": "balanced"}},
        "class_counts",
    ),
    (
        "multilabel balanced needs n_samples",
        {
            "family": "pos_weighted_bce",
            "task": "multilabel",
            "params": {"pos_weight": "balanced"},
            "class_counts": C3,
        },
        "n_samples",
    ),
    ("from_logits not bool", {"from_logits": "yes"}, "from_logits"),
    ("params not a dict", {"params": [1, 2]}, "params"),
]


@pytest.mark.parametrize(
    ("kwargs", "field"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_raises_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError) as info:
        LossConfig(**kwargs)
    assert field in str(info.value)


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match="ce, focal, poly1, logit_adjusted, ldam, vs"):
        LossConfig("dice")


def _json(**overrides):
    data = {"format": "lossearch.loss/1", "family": "ce"}
    data.update(overrides)
    return json.dumps(data)


BAD_JSON = [
    ("not json", "{not json", "not valid JSON"),
    ("wrong format", _json(format="other/1"), "format"),
    ("missing format", json.dumps({"family": "ce"}), "format"),
    ("unknown key", _json(extra=1), "extra"),
    ("a list", "[1, 2]", "config"),
    ("NaN constant", '{"format": "lossearch.loss/1", "label_smoothing": NaN}', "NaN"),
    ("invalid value inside", _json(family="focal", params={"gamma": -3}), "params.gamma"),
    ("code is never run", _json(family="__import__('os').system('true')"), "family"),
    ("missing file", "/nonexistent/best_loss.json", "no such file"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_JSON], ids=[c[0] for c in BAD_JSON]
)
def test_bad_json_is_rejected(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_loss(text)


def test_loss_classes_validate_their_own_arguments():
    with pytest.raises(ValueError, match="focal.gamma"):
        FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="label_smoothing"):
        FocalLoss(label_smoothing=2)
    with pytest.raises(ValueError, match="task"):
        FocalLoss(task="ranking")


def test_class_weights_name_the_empty_class():
    with pytest.raises(ValueError, match="'eel' has zero training samples"):
        class_weights("inverse", [5, 3, 0], class_names=["cat", "dog", "eel"])


def test_numpy_scalars_are_numbers_and_are_stored_as_python_numbers():
    """On main np.float32(2.0) (from an array, say) was refused as 'not a number'."""
    import numpy as np

    from lossearch.decision import Decision

    config = LossConfig(
        "focal",
        {"gamma": np.float32(2.0)},
        label_smoothing=np.float64(0.1),
        weights="inverse",
        class_counts=np.array([90, 10]),
    )
    assert type(config.params["gamma"]) is float and config.params["gamma"] == 2.0
    assert type(config.label_smoothing) is float
    assert LossConfig.from_json(config.to_json()) == config  # JSON takes them
    assert Decision.logit_adjustment(np.float32(1.0), [90, 10]).tau == 1.0
