"""Bad inputs fail before the first trial, with a message naming the argument."""

import keras
import numpy as np
import pytest

import lossearch
from tests.search_helpers import dense_model, digits

X, Y = digits()
FEW = {"n_trials": 1, "epochs": 1, "show_progress": False}


def _nan_x():
    x = X.copy()
    x[3, 5] = np.nan
    return x


def _single_sample_class():
    y = Y.copy()
    y[y == 9] = 8
    y[np.flatnonzero(y == 8)[0]] = 9
    return y


def _yaml(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (id, overrides of optimize's arguments, expected fragment of the message)
CASES = [
    ("lengths differ", {"data": (X[:50], Y[:51])}, "data: training x has 50 samples"),
    ("label above range", {"data": (X, np.where(Y == 9, 10, Y))}, "outside [0, 10)"),
    ("negative label", {"data": (X, np.where(Y == 9, -1, Y))}, "label -1"),
    ("class with one sample", {"data": (X, _single_sample_class())}, "fewer than 2 samples"),
    ("NaN features", {"data": (_nan_x(), Y)}, "NaN"),
    ("string labels", {"data": (X, Y.astype(str))}, "numeric labels"),
    ("data is one array", {"data": X}, "data: expected (x, y)"),
    ("dict without train", {"data": {"training": (X, Y)}}, "'train'"),
    ("one-hot of wrong width", {"data": (X, np.eye(7)[Y % 7])}, "do not fit a model output"),
    ("output narrower than labels", {"build_model": dense_model(64, 5)}, "outside [0, 5)"),
    ("output wider than classes", {"build_model": dense_model(64, 12)}, "more outputs (12)"),
    ("build_model not callable", {"build_model": 3}, "build_model: expected a callable"),
    (
        "build_model returns a layer",
        {"build_model": lambda: keras.layers.Dense(3)},
        "build_model: must return a keras.Model",
    ),
    ("build_model raises", {"build_model": lambda: 1 / 0}, "build_model: raised ZeroDivisionError"),
    ("unknown objective", {"objective": "auc_roc"}, "objective: unknown objective 'auc_roc'"),
    (
        "bad objective direction",
        {"objective": (lambda y, p: 0.0, "upward")},
        "objective: direction",
    ),
    ("unknown space", {"space": "tiny"}, "space: unknown space 'tiny'"),
    ("space for another task", {"space": "binary"}, "space: 'binary' is for ['binary']"),
    ("n_trials zero", {"n_trials": 0}, "n_trials"),
    ("epochs zero", {"epochs": 0}, "epochs"),
    ("batch_size negative", {"batch_size": -4}, "batch_size"),
    ("validation above one", {"validation": 1.5}, "validation"),
    ("cv of one", {"cv": 1}, "cv: expected an integer number of folds"),
    ("cv neither folds nor auto", {"cv": "often"}, "cv: expected an integer number of folds"),
    ("decision not a bool", {"decision": "yes"}, "decision: expected True or False"),
    ("cv above rarest class", {"cv": 50}, "cv: the rarest class"),
    ("cv with a validation set", {"data": ((X, Y), (X, Y)), "cv": 3}, "cv: pass either"),
    ("minority class unknown", {"minority_classes": ["seven"]}, "minority_classes"),
    ("class_names wrong length", {"class_names": ["a", "b"]}, "class_names"),
    ("storage not a URL", {"storage": "lossearch.db"}, "storage: expected an Optuna storage URL"),
    ("fit_kwargs sets epochs", {"fit_kwargs": {"epochs": 3}}, "fit_kwargs"),
    ("timeout negative", {"timeout": -1}, "timeout"),
    ("unknown selection", {"selection": "luckiest"}, "selection"),
    ("n_jobs zero", {"n_jobs": 0}, "n_jobs"),
    ("unreachable MLflow", {"tracking_uri": "http://127.0.0.1:9"}, "tracking_uri: cannot reach"),
]


class CountingBuilder:
    def __init__(self, build):
        self.build, self.calls = build, 0

    def __call__(self):
        self.calls += 1
        return self.build()


@pytest.mark.parametrize(
    ("overrides", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_fails_before_the_first_trial(overrides, message, mlflow_uri, experiment):
    kwargs = {"tracking_uri": mlflow_uri, "experiment_name": experiment, **FEW, **overrides}
    build = kwargs.pop("build_model", dense_model(64, 10))
    counting = CountingBuilder(build) if callable(build) else build
    data = kwargs.pop("data", (X, Y))
    with pytest.raises(ValueError) as info:
        lossearch.optimize(counting, data, **kwargs)
    assert message in str(info.value)
    if isinstance(counting, CountingBuilder):
        assert counting.calls <= 1  # at most the probe build: no trial ran


SPACE_CASES = [
    ("malformed YAML", "families: {ce: {}\n", "not valid YAML"),
    ("unknown family", "families: {dice: {}}", "families.dice"),
    ("unknown parameter", "families: {focal: {gama: 2}}", "families.focal.gama"),
    (
        "low above high",
        "families: {focal: {gamma: {type: float, low: 3, high: 1}}}",
        "'low' (3) is above",
    ),
    (
        "invalid range for the parameter",
        "families: {focal: {gamma: {type: float, low: -1, high: 1}}}",
        "families.focal.gamma",
    ),
    ("unknown distribution", "families: {focal: {gamma: {type: normal}}}", "'type' must be one of"),
    ("unknown top-level key", "families: {ce: {}}\nfamilys: {}", "unknown key"),
    ("unknown scheme", "families: {ce: {}}\nweights: {sqrt: {}}", "weights.sqrt"),
    (
        "recipe outside the space",
        "families: {ce: {}}\nrecipes: [{family: focal}]",
        "recipes.recipe_0",
    ),
    ("smoothing of one", "families: {ce: {}}\nlabel_smoothing: 1.0", "label_smoothing"),
    ("bare list", "families: {focal: {gamma: [1, 2]}}", "ambiguous"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in SPACE_CASES], ids=[c[0] for c in SPACE_CASES]
)
def test_malformed_space_file_names_file_key_and_reason(
    text, message, tmp_path, mlflow_uri, experiment
):
    path = _yaml(tmp_path, text)
    with pytest.raises(ValueError) as info:
        lossearch.optimize(
            dense_model(64, 10),
            (X, Y),
            space=path,
            tracking_uri=mlflow_uri,
            experiment_name=experiment,
            **FEW,
        )
    assert message in str(info.value)
    if "YAML" not in message:
        assert path in str(info.value)
