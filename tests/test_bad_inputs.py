"""Bad input on every surface (optimize, the CLI, space files, config JSON, storage URLs) is
rejected before the first trial with a ``ValueError`` naming the argument. Also: nothing
lossearch loads executes code, and credentials never reach MLflow or the logs."""

import contextlib
import io
import json
import re
from pathlib import Path

import keras
import mlflow
import numpy as np
import optuna
import pytest

import lossearch
from lossearch import cli
from tests.search_helpers import dense_model, digits, tiny_search

X, Y = digits()
FEW = {"n_trials": 1, "epochs": 1, "show_progress": False}
ROOT = Path(__file__).parent.parent
WORKER = ["worker", "tests.scaleout_model:build_model", "--data", "tests.scaleout_model:load_data"]
WORKER_STORE = ["--storage", "sqlite:///{tmp_path}/w.db", "--study", "w"]
CONFIG = {"format": "lossearch.loss/1", "family": "ce", "task": "multiclass"}


class CountingBuilder:
    """``build_model`` that counts its calls: two (the probe) means no trial ran."""

    def __init__(self, build):
        self.build, self.calls = build, 0

    def __call__(self):
        self.calls += 1
        return self.build()


def _dataset(nan=False):
    import tensorflow as tf

    x = _nan_features() if nan else X
    return tf.data.Dataset.from_tensor_slices((x, Y)).batch(64)


def _sparse(x):
    from scipy import sparse

    return sparse.csr_matrix(x)


def via_optimize(data=(X, Y), build_model=None, **overrides):
    def attempt(ctx):
        build = dense_model(64, 10) if build_model is None else build_model
        counting = CountingBuilder(build) if callable(build) else build
        kwargs = {"tracking_uri": ctx["mlflow_uri"], "experiment_name": ctx["experiment"]}
        with pytest.raises(ValueError) as info:
            lossearch.optimize(counting, data, **{**kwargs, **FEW, **overrides})
        if isinstance(counting, CountingBuilder):
            assert counting.calls <= 2  # the probe's two builds at most: no trial ran
        return str(info.value)

    return attempt


def via_cli(*argv, files=None):
    """``lossearch ARGV`` ends with exit code 2 and one error line; ``files`` are written to
    the test's folder first (``{tmp_path}`` in ARGV names it)."""

    def attempt(ctx):
        if any("{tmp_path}/study.db" in a for a in argv):  # an existing study file
            optuna.create_study(storage=f"sqlite:///{ctx['tmp_path']}/study.db", study_name="s1")
        for name, content in (files or {}).items():
            path = ctx["tmp_path"] / name
            if callable(content):  # writes a binary file (an .npz, say) itself
                content(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main([a.format(**ctx) for a in argv])
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code
        assert code == 2
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lossearch: error: "), lines
        return lines[0]

    return attempt


CSV_CLI = ("optimize", "--data", "pets.csv", "--target", "label")
STUDY_DB = ("--storage", "sqlite:///{tmp_path}/study.db", "--study", "s1")
MODULE_CLI = ("optimize", "{tmp_path}/m.py:build", "--data", "{tmp_path}/m.py:data")
MODULE_FILES = {
    "m.py": "def build():\n    pass\n\ndata = None\n\ndef case(n):\n    return n\n",
    "space.yaml": "families: {ce: {}}\n",
}


def via_space_file(text):
    def attempt(ctx):
        path = ctx["tmp_path"] / "space.yaml"
        path.write_text(text)
        return via_optimize(space=str(path))(ctx)

    return attempt


def via_config_json(data):
    def attempt(ctx):
        path = ctx["tmp_path"] / "loss.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        with pytest.raises(ValueError) as info:
            lossearch.load_loss(str(path))
        return str(info.value)

    return attempt


def _same_model_every_time():
    model = dense_model(64, 10)()
    return lambda: model


def _shared_layer_builder():
    hidden = keras.layers.Dense(16, activation="relu")
    return lambda: keras.Sequential([keras.Input((64,)), hidden, keras.layers.Dense(10)])


def _labels_where_nine_is(value):
    return np.where(Y == 9, value, Y)


def _nan_features():
    x = X.copy()
    x[3, 5] = np.nan
    return x


def _one_hot_with_a_double_row():
    y = np.eye(10)[Y]
    y[7, (Y[7] + 1) % 10] = 1
    return y


def _softmax_model():
    return lambda: keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(10, activation="softmax")]
    )


def _single_sample_class():
    y = Y.copy()
    y[y == 9] = 8
    y[np.flatnonzero(y == 8)[0]] = 9
    return y


def _npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def _csv(header: str, rows: int = 40, label=lambda i: i % 2, sep=","):
    lines = [header] + [
        sep.join([f"{i * 0.1:.1f}", f"{i % 7}", f"{label(i)}"]) for i in range(rows)
    ]
    return "\n".join(lines) + "\n"


def _with_inf():
    x = X.copy()
    x[0, 7] = np.inf
    return x


def _none_model():
    return lambda: None


def _raising_model():
    def build():
        raise RuntimeError("boom in builder")

    return build


SECRET = "hunter2"  # no message may hold it, whatever the case
PETS = _csv("a,b,label")

# Issue 41's own adversarial round (2026-12-07): cases no earlier round tried. Each was first
# run as a user would; the ones marked "was:" failed then and are fixed.
ROUND_FIVE = [
    ("labels with a fraction", via_optimize(data=(X, Y + 0.5)), ["non-integer class labels"]),
    ("infinite feature", via_optimize(data=(_with_inf(), Y)), ["infinite", "sample 0"]),
    ("features 1-D", via_optimize(data=(X[:, 0], Y)), ["do not fit the model's input (64,)"]),
    ("NaN labels", via_optimize(data=(X, np.where(Y == 3, np.nan, Y))), ["NaN or infinite labels"]),
    ("object features", via_optimize(data=(X.astype(object), Y)), ["numeric array", "object"]),
    ("no samples", via_optimize(data=(X[:0], Y[:0])), ["training set is empty"]),
    ("data a triple", via_optimize(data=(X, Y, Y)), ["data: expected (x, y)"]),
    ("validation zero", via_optimize(validation=0.0), ["validation: expected a number in (0, 1)"]),
    ("validation negative", via_optimize(validation=-0.1), ["validation:"]),
    ("validation as text", via_optimize(validation="20%"), ["validation:", "'20%'"]),
    ("epochs fractional", via_optimize(epochs=1.5), ["epochs: expected an integer >= 1"]),
    ("epochs a bool", via_optimize(epochs=True), ["epochs: expected an integer", "True"]),
    ("n_trials as text", via_optimize(n_trials="10"), ["n_trials: expected an integer", "'10'"]),
    ("seed negative", via_optimize(seed=-1), ["seed: expected an integer in [0, 2147483647]"]),
    ("seed as text", via_optimize(seed="abc"), ["seed:", "'abc'"]),
    ("objective empty", via_optimize(objective=""), ["objective: unknown objective ''"]),
    ("objective a number", via_optimize(objective=123), ["objective: expected a name"]),
    ("objective taking no arguments", via_optimize(objective=lambda: 1.0), ["two arguments"]),
    ("space without families", via_optimize(space={}), ["'families'", "non-empty mapping"]),
    (
        "space: log scale from zero",
        via_optimize(
            space={
                "families": {
                    "focal": {"gamma": {"type": "float", "low": 0, "high": 1, "log": True}}
                }
            }
        ),
        ["families.focal.gamma", "log-scale range needs 'low' > 0"],
    ),
    ("class_names repeated", via_optimize(class_names=["a"] * 10), ["10 unique names"]),
    ("minority_classes empty", via_optimize(minority_classes=[]), ["minority_classes:"]),
    ("timeout NaN", via_optimize(timeout=float("nan")), ["timeout: expected a number > 0"]),
    ("storage empty", via_optimize(storage=""), ["storage: expected an Optuna storage URL"]),
    ("storage a folder", via_optimize(storage="sqlite:///{tmp_path}"), ["storage: cannot open"]),
    ("study_name empty", via_optimize(study_name=""), ["study_name: expected a non-empty"]),
    ("experiment_name empty", via_optimize(experiment_name=""), ["experiment_name:"]),
    ("backend in capitals", via_optimize(backend="Optuna"), ["backend: expected one of"]),
    ("callbacks of another kind", via_optimize(callbacks=[object()]), ["callbacks:"]),
    (
        "fit_kwargs: validation_data",
        via_optimize(fit_kwargs={"validation_data": (X, Y)}),
        ["fit_kwargs"],
    ),
    (
        "fit_kwargs: a list",
        via_optimize(fit_kwargs=[("verbose", 0)]),
        ["fit_kwargs: expected a dict"],
    ),
    (
        "build_model returns None",
        via_optimize(build_model=_none_model()),
        ["must return a keras.Model"],
    ),
    (
        "build_model raises",
        via_optimize(build_model=_raising_model()),
        ["build_model: raised", "boom"],
    ),
    # was: "training y must be 0/1 for a model with sigmoid outputs"
    (
        "ten classes, a model of one output",
        via_optimize(build_model=dense_model(64, 1)),
        ["10 distinct labels", "the model has 1 output", "give its last layer 10 units"],
    ),
    (
        "model input narrower",
        via_optimize(build_model=dense_model(32, 10)),
        ["model's input (32,)"],
    ),
    ("images for a dense model", via_optimize(data=(X.reshape(-1, 8, 8), Y)), ["shape (8, 8)"]),
    ("confirm_seeds negative", via_optimize(confirm_seeds=-1), ["confirm_seeds:"]),
    ("early_stop as text", via_optimize(early_stop="yes"), ["early_stop: expected True or False"]),
    ("pruner by name", via_optimize(pruner="median"), ["pruner: expected an Optuna pruner"]),
    ("sampler by name", via_optimize(sampler="tpe"), ["sampler: expected an Optuna sampler"]),
    ("decision None", via_optimize(decision=None), ["decision: expected True or False"]),
    ("task unknown", via_optimize(task="regression"), ["task: expected one of"]),
    ("cv in words", via_optimize(cv="five"), ["cv: expected an integer number of folds"]),
    # was: RuntimeError "can't start new thread" after the search had started
    ("a million threads", via_optimize(n_jobs=10**6), ["n_jobs: expected an integer in [1, 256]"]),
    ("recycle_every fractional", via_optimize(recycle_every=2.5), ["recycle_every:"]),
    (
        "labels mixing text and numbers",
        via_optimize(
            data=(X, np.array([str(v) if i % 2 else v for i, v in enumerate(Y)], dtype=object))
        ),
        ["training y", "object"],
    ),
    ("test_data with NaN", via_optimize(test_data=(_nan_features(), Y)), ["test x", "NaN"]),
    (
        "a password in the storage URL's query",
        via_optimize(storage=f"postgresql://u@127.0.0.1:1/db?password={SECRET}"),
        ["storage: cannot open", "password=***"],
    ),
    (
        "a token in the tracking URI's query",
        via_optimize(tracking_uri=f"http://127.0.0.1:9/?token={SECRET}"),
        ["tracking_uri:", "token=***"],
    ),
    # the command line, with files of one's own
    (
        "npz without x",
        via_cli("optimize", "--data", "a.npz", files={"a.npz": _npz(features=X, y=Y)}),
        ["expected 'x' and 'y'"],
    ),
    (
        "npz of two lengths",
        via_cli("optimize", "--data", "a.npz", files={"a.npz": _npz(x=X, y=Y[:50])}),
        ["training x has", "training y has 50"],
    ),
    # was: pyarrow's own words, naming no option
    (
        "damaged Parquet",
        via_cli(
            "optimize", "--data", "p.parquet", "--target", "label", files={"p.parquet": "text"}
        ),
        ["--data: p.parquet is not a readable Parquet file"],
    ),
    (
        "damaged npz",
        via_cli("optimize", "--data", "a.npz", files={"a.npz": b"PK not a zip"}),
        ["--data: a.npz is not a readable .npz file"],
    ),
    (
        "only the target column",
        via_cli(*CSV_CLI, files={"pets.csv": "label\n0\n1\n"}),
        ["no feature column beside 'label'"],
    ),
    # was: "class '-1.935' has fewer than 2 samples"
    (
        "a measured target",
        via_cli(*CSV_CLI, files={"pets.csv": _csv("a,b,label", label=lambda i: i / 3)}),
        ["--target: 'label' of pets.csv holds numbers with a fraction"],
    ),
    # was: "no column 'label'", nothing about the separator
    (
        "semicolon-separated CSV",
        via_cli(*CSV_CLI, files={"pets.csv": _csv("a;b;label", sep=";")}),
        ["looks separated by another character"],
    ),
    # was: a whole search, pandas having renamed the second 'a' to 'a.1'
    (
        "a column name twice",
        via_cli(*CSV_CLI, files={"pets.csv": _csv("a,a,label")}),
        ["names column(s) ['a'] more than once"],
    ),
    (
        "space a list",
        via_cli("demo", "--space", "s.yaml", files={"s.yaml": "- ce\n- focal\n"}),
        ["expected a mapping at the top level"],
    ),
    (
        "space with aliases",
        via_cli(
            "demo",
            "--space",
            "s.yaml",
            files={"s.yaml": "a: &a [x]\nb: [*a, *a]\nfamilies: {ce: {}}\n"},
        ),
        ["aliases (*name) are not allowed"],
    ),
    # was: the last 'families' kept silently, and a whole search run on it
    (
        "space key twice",
        via_cli(
            "demo",
            "--space",
            "s.yaml",
            files={"s.yaml": "families: {ce: {}}\nfamilies: {focal: {}}\n"},
        ),
        ["key 'families' is given twice"],
    ),
    (
        "space step zero",
        via_cli(
            "demo",
            "--space",
            "s.yaml",
            files={
                "s.yaml": "families: {focal: {gamma: {type: float, low: 0, high: 2, step: 0}}}\n"
            },
        ),
        ["'step' must be > 0"],
    ),
    (
        "space recipes a mapping",
        via_cli(
            "demo",
            "--space",
            "s.yaml",
            files={"s.yaml": "families: {ce: {}}\nrecipes: {family: ce}\n"},
        ),
        ["recipes[0]"],
    ),
    (
        "objective with a space",
        via_cli("demo", "--objective", "balanced accuracy"),
        ["--objective: unknown objective"],
    ),
    (
        "repair a journal that is not there",
        via_cli("repair", "--storage", "journal:///{tmp_path}/no.log"),
        ["no journal file"],
    ),
    (
        "repair an SQLite study",
        via_cli("repair", "--storage", "sqlite:///{tmp_path}/study.db"),
        ["repair takes a journal file URL"],
    ),
    # was: a whole demo on a "long tail" whose head is the smallest class
    (
        "imbalance below one",
        via_cli("demo", "--imbalance", "0.5"),
        ["--imbalance: expected a number >= 1"],
    ),
    ("cv negative", via_cli("demo", "--cv", "-2"), ["--cv: expected an integer number of folds"]),
    (
        "a slash in the password",
        via_cli("demo", "--storage", f"postgresql://u:pa/{SECRET}@127.0.0.1:1/db"),
        ["u:***@127.0.0.1"],
    ),
    (
        "a percent-encoded password",
        via_cli("demo", "--tracking-uri", f"http://bob:p%40{SECRET}@127.0.0.1:9"),
        ["bob:***@"],
    ),
    (
        "model into a missing folder",
        via_cli("demo", "-m", "{tmp_path}/no/model.keras"),
        ["--model: the folder"],
    ),
    (
        "report into a folder",
        via_cli("report", *STUDY_DB, "-o", "{tmp_path}"),
        ["--output:", "is a folder"],
    ),
]

# (id, attempt, fragments the message must hold)
CASES = [
    # optimize
    ("lengths differ", via_optimize(data=(X[:50], Y[:51])), ["data: training x has 50 samples"]),
    ("label above range", via_optimize(data=(X, _labels_where_nine_is(10))), ["outside [0, 10)"]),
    ("negative label", via_optimize(data=(X, _labels_where_nine_is(-1))), ["label -1"]),
    (
        "class with one sample",
        via_optimize(data=(X, _single_sample_class())),
        ["fewer than 2 samples"],
    ),
    ("NaN features", via_optimize(data=(_nan_features(), Y)), ["NaN"]),
    # on main: a hang in the label pass, memory growing
    (
        "tf.data repeated forever",
        via_optimize(data=(_dataset().repeat(), _dataset())),
        ["repeats forever"],
    ),
    # on main: two trials COMPLETE at chance, no warning
    ("tf.data with NaN features", via_optimize(data=(_dataset(nan=True), _dataset())), ["NaN"]),
    ("complex features", via_optimize(data=(X.astype(complex), Y)), ["complex dtype"]),
    # numeric edges of dtype casts: Keras computes in float32, NumPy seeds end at 2**32
    ("features beyond float32", via_optimize(data=(X * 1e300, Y)), ["beyond-float32"]),
    ("test_data of another width", via_optimize(test_data=(X[:, :10], Y)), ["test_data: x has"]),
    ("test_data labels out of range", via_optimize(test_data=(X, Y + 10)), ["test y has label"]),
    ("test_data not a pair", via_optimize(test_data=X), ["test_data: expected (x_test, y_test)"]),
    (
        "seed beyond 31 bits",
        via_optimize(seed=2**40),
        ["seed: expected an integer in [0, 2147483647]"],
    ),
    ("sparse features", via_optimize(data=(_sparse(X), Y)), ["sparse csr_matrix", "toarray"]),
    (
        "text labels not among class_names",
        via_optimize(data=(X, Y.astype(str)), class_names=[f"d{i}" for i in range(10)]),
        ["data: label '0' is not one of class_names"],
    ),
    ("data is one array", via_optimize(data=X), ["data: expected (x, y)"]),
    ("dict without train", via_optimize(data={"training": (X, Y)}), ["'train'"]),
    (
        "one-hot of wrong width",
        via_optimize(data=(X, np.eye(7)[Y % 7])),
        ["do not fit a model output"],
    ),
    (
        "output narrower than labels",
        via_optimize(build_model=dense_model(64, 5)),
        ["outside [0, 5)", "(10 classes), but the model has 5 outputs; give its last layer 10"],
    ),
    (
        "output wider than classes",
        via_optimize(build_model=dense_model(64, 12)),
        ["more outputs (12)"],
    ),
    ("build_model not callable", via_optimize(build_model=3), ["build_model: expected a callable"]),
    # on main each trial trained on from the last one's weights, silently
    (
        "build_model returning one model every time",
        via_optimize(build_model=_same_model_every_time()),
        ["build_model: returned the same model (or layers) on a second call"],
    ),
    (
        "build_model reusing a layer",
        via_optimize(build_model=_shared_layer_builder()),
        ["build_model: returned the same model (or layers) on a second call"],
    ),
    (
        "model input narrower than the features",
        via_optimize(build_model=dense_model(32, 10)),
        ["data: samples of shape (64,) do not fit the model's input (32,)"],
    ),
    (
        "objective callable without arguments",
        via_optimize(objective=lambda: 0.5),
        ["objective: lambda must take two arguments"],
    ),
    (
        "callback without arguments",
        via_optimize(callbacks=[lambda: None]),
        ["callbacks: expected a list of Optuna callbacks"],
    ),
    (
        "sample weights in fit_kwargs",
        via_optimize(fit_kwargs={"sample_weight": np.ones(3)}),
        ["fit_kwargs", "sample_weight"],
    ),
    (
        "build_model returns a layer",
        via_optimize(build_model=lambda: keras.layers.Dense(3)),
        ["build_model: must return a keras.Model"],
    ),
    (
        "build_model raises",
        via_optimize(build_model=lambda: 1 / 0),
        ["build_model: raised ZeroDivisionError"],
    ),
    (
        "unknown objective",
        via_optimize(objective="auc_roc"),
        ["objective: unknown objective 'auc_roc'"],
    ),
    (
        "bad objective direction",
        via_optimize(objective=(lambda y, p: 0.0, "upward")),
        ["objective: direction"],
    ),
    ("unknown space", via_optimize(space="tiny"), ["space: unknown space 'tiny'"]),
    ("space for another task", via_optimize(space="binary"), ["space: 'binary' is for ['binary']"]),
    ("n_trials zero", via_optimize(n_trials=0), ["n_trials"]),
    ("epochs zero", via_optimize(epochs=0), ["epochs"]),
    ("batch_size negative", via_optimize(batch_size=-4), ["batch_size"]),
    ("validation above one", via_optimize(validation=1.5), ["validation"]),
    ("cv of one", via_optimize(cv=1), ["cv: expected an integer number of folds"]),
    (
        "cv neither folds nor auto",
        via_optimize(cv="often"),
        ["cv: expected an integer number of folds"],
    ),
    ("decision not a bool", via_optimize(decision="yes"), ["decision: expected True or False"]),
    (
        "registered model without a refit",
        via_optimize(refit=False, registered_model_name="digits"),
        ["registered_model_name: registers the refit model", "refit=True"],
    ),
    ("registered name empty", via_optimize(registered_model_name=""), ["registered_model_name"]),
    ("cv above rarest class", via_optimize(cv=50), ["cv: the rarest class"]),
    ("cv with a validation set", via_optimize(data=((X, Y), (X, Y)), cv=3), ["cv: pass either"]),
    ("minority class unknown", via_optimize(minority_classes=["seven"]), ["minority_classes"]),
    ("class_names wrong length", via_optimize(class_names=["a", "b"]), ["class_names"]),
    (
        "storage not a URL",
        via_optimize(storage="lossearch.db"),
        ["storage: expected an Optuna storage URL"],
    ),
    ("fit_kwargs sets epochs", via_optimize(fit_kwargs={"epochs": 3}), ["fit_kwargs"]),
    ("timeout negative", via_optimize(timeout=-1), ["timeout"]),
    ("unknown selection", via_optimize(selection="luckiest"), ["selection"]),
    ("n_jobs zero", via_optimize(n_jobs=0), ["n_jobs"]),
    ("recycle_every zero", via_optimize(recycle_every=0), ["recycle_every"]),
    (
        "recycle_every with a local builder",
        via_optimize(recycle_every=2),
        ["recycle_every", "pickling failed", "module-level"],
    ),
    (
        "unreachable MLflow",
        via_optimize(tracking_uri="http://127.0.0.1:9"),
        ["tracking_uri: cannot reach"],
    ),
    ("labels as 2-D of wrong width", via_optimize(data=(X, np.eye(4)[Y % 4])), ["data:"]),
    (
        "a class with zero samples",
        via_optimize(data=(X, _labels_where_nine_is(8))),
        ["data: class '9' has no samples"],
    ),
    ("unknown loss family", via_optimize(space={"families": {"dice": {}}}), ["families.dice"]),
    ("storage unknown scheme", via_optimize(storage="ftp://host/db"), ["storage:", "'ftp'"]),
    ("storage not a string", via_optimize(storage=42), ["storage:"]),
    (
        "journal file in a missing folder",
        via_optimize(storage="journal:///no/such/folder/s.log"),
        ["storage:", "existing folder"],
    ),
    (
        "SQLite file in a missing folder",
        via_optimize(storage="sqlite:///no/such/folder/s.db"),
        ["storage:", "does not exist"],
    ),
    (
        "PostgreSQL not answering",
        via_optimize(storage="postgresql://postgres:pw@127.0.0.1:1/test"),
        ["storage: cannot open", "postgresql://postgres:***@127.0.0.1:1/test"],
    ),
    (
        "Redis not answering",
        via_optimize(storage="redis://127.0.0.1:1/0"),
        ["storage: cannot open", "redis://127.0.0.1:1/0"],
    ),
    ("worker without storage", via_cli(*WORKER, "--study", "s"), ["required: --storage"]),
    (
        "worker with zero threads",
        via_cli(
            *WORKER, "--storage", "sqlite:///{tmp_path}/s.db", "--study", "s", "--threads", "0"
        ),
        ["threads:"],
    ),
    (
        "worker heartbeat of zero",
        via_cli(
            *WORKER,
            "--storage",
            "sqlite:///{tmp_path}/s.db",
            "--study",
            "s",
            "--heartbeat-interval",
            "0",
        ),
        ["--heartbeat-interval"],
    ),
    (
        "builder without MODULE:NAME",
        via_cli("optimize", "mymodel", "--data", "m:d"),
        ["build_model: expected MODULE:NAME"],
    ),
    (
        "data module missing",
        via_cli("optimize", "tests.scaleout_model:build_model", "--data", "no_such_module:load"),
        ["--data: cannot import"],
    ),
    (
        "export of an unknown study",
        via_cli("export", "--storage", "sqlite:///{tmp_path}/study.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    (
        "report of an unknown study",
        via_cli("report", "--storage", "sqlite:///{tmp_path}/study.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    (
        "report from a missing folder",
        via_cli("report", "--storage", "sqlite:///{tmp_path}/none/e.db", "--study", "nope"),
        ["storage: no SQLite file"],
    ),
    (
        "sync of an unknown study",
        via_cli("sync-mlflow", "--storage", "sqlite:///{tmp_path}/study.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    (
        "export from a missing SQLite file",
        via_cli("export", "--storage", "sqlite:///{tmp_path}/missing.db", "--study", "s"),
        ["storage: no SQLite file"],
    ),
    (
        "builder module with a syntax error",
        via_cli(
            "optimize",
            "{tmp_path}/broken.py:build_model",
            "--data",
            "{tmp_path}/broken.py:d",
            files={"broken.py": "def build_model(:\n"},
        ),
        ["build_model: importing", "SyntaxError"],
    ),
    (
        "builder module that raises at import",
        via_cli(
            "optimize",
            "{tmp_path}/raising.py:build_model",
            "--data",
            "{tmp_path}/raising.py:d",
            files={"raising.py": "raise RuntimeError('no GPU here')\n"},
        ),
        ["build_model: importing", "RuntimeError: no GPU here"],
    ),
    ("output folder missing", via_cli("demo", "-o", "{tmp_path}/no/best.json"), ["--output"]),
    (
        "export over its own storage",
        via_cli("export", *STUDY_DB, "-o", "{tmp_path}/study.db"),
        ["--output: '", "study.db' is the storage of this command"],
    ),
    (
        "report over its own storage",
        via_cli("report", *STUDY_DB, "-o", "{tmp_path}/study.db"),
        ["--output: '", "is the storage of this command"],
    ),
    (
        "demo writing over its storage",
        via_cli(
            "demo", "--storage", "sqlite:///{tmp_path}/study.db", "--report", "{tmp_path}/study.db"
        ),
        ["--report: '", "is the storage of this command"],
    ),
    (
        "optimize writing over its space file",
        via_cli(
            *MODULE_CLI,
            "--space",
            "{tmp_path}/space.yaml",
            "-o",
            "{tmp_path}/space.yaml",
            files=MODULE_FILES,
        ),
        ["--output: '", "is the space file of this command"],
    ),
    (
        "optimize writing over its data module",
        via_cli(*MODULE_CLI, "--report", "{tmp_path}/m.py", files=MODULE_FILES),
        ["--report: '", "is the build_model module of this command"],
    ),
    (
        "storage file that is no database",
        via_cli(
            "export",
            "--storage",
            "sqlite:///{tmp_path}/best.db",
            "--study",
            "s",
            files={"best.db": "{}"},
        ),
        ["is not an SQLite database"],
    ),
    (
        "damaged SQLite file",
        via_cli(
            "export",
            "--storage",
            "sqlite:///{tmp_path}/bad.db",
            "--study",
            "s",
            files={"bad.db": "SQLite format 3\x00" + "garbage" * 200},
        ),
        ["is a damaged SQLite database", ".recover"],
    ),
    (
        "--data a function that needs arguments",
        via_cli(*MODULE_CLI[:3], "{tmp_path}/m.py:case", files=MODULE_FILES),
        ["--data:", "needs arguments"],
    ),
    ("output is a folder", via_cli("demo", "-o", "{tmp_path}"), ["is a folder"]),
    ("report folder missing", via_cli("demo", "--report", "{tmp_path}/no/r.html"), ["--report"]),
    ("cli trials zero", via_cli("demo", "--trials", "0"), ["--trials: expected an integer >= 1"]),
    ("cli validation above one", via_cli("demo", "--validation", "1.5"), ["--validation"]),
    ("cli timeout negative", via_cli("demo", "--timeout", "-5"), ["--timeout: expected"]),
    ("cli threads zero", via_cli(*WORKER, *WORKER_STORE, "--threads", "0"), ["--threads"]),
    (
        "cli recycle negative",
        via_cli(*WORKER, *WORKER_STORE, "--recycle-every", "-1"),
        ["--recycle-every"],
    ),
    (
        "grace period below two heartbeats",
        via_cli(*WORKER, *WORKER_STORE, "--heartbeat-interval", "10", "--grace-period", "5"),
        ["grace_period: 5 s is shorter than two heartbeats"],
    ),
    (
        "space: python object tag",
        via_space_file("families: !!python/object/apply:os.system ['touch pwned']"),
        ["space"],
    ),
    (
        "space: alias bomb",  # 9 levels of 10 aliases: a billion strings from 300 bytes
        via_space_file(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "description: *i\nfamilies: {ce: {}}\n"
        ),
        ["aliases (*name) are not allowed"],
    ),
    (
        "space: file of many megabytes",
        via_space_file("families: {ce: {}}\n" + "#" * 2_000_000),
        ["more than a space needs"],
    ),
    (
        "keras tuner study name leaves its folder",
        via_optimize(backend="keras_tuner", study_name="../../../x"),
        ["study_name: '../../../x' names the Keras Tuner project's folder"],
    ),
    ("config: not JSON", via_config_json("{not json"), ["not valid JSON"]),
    ("config: unknown family", via_config_json({**CONFIG, "family": "dice"}), ["family"]),
    ("config: family a list", via_config_json({**CONFIG, "family": []}), ["family: unknown"]),
    (
        "config: a count beyond float",
        via_config_json(json.dumps({**CONFIG, "class_counts": [90, 10]}).replace("90", "1e400")),
        ["class_counts: counts must be whole numbers in [0, 2**53]"],
    ),
    ("config: task a dict", via_config_json({**CONFIG, "task": {}}), ["task: expected one of"]),
    ("config: weights a list", via_config_json({**CONFIG, "weights": []}), ["weights: unknown"]),
    ("config: unknown key", via_config_json({**CONFIG, "extra": 1}), ["extra"]),
    (
        "config: NaN constant",
        via_config_json(json.dumps({**CONFIG, "label_smoothing": 0.1}).replace("0.1", "NaN")),
        ["NaN"],
    ),
    (
        "config: code in a field",
        via_config_json({**CONFIG, "family": "__import__('os')"}),
        ["family"],
    ),
    # -- a first hour's data files (issue 41: pandas' and NumPy's own words until 2026-12) --
    (
        "csv: a text feature column",
        via_cli(*CSV_CLI, files={"pets.csv": "colour,weight,label\nred,1.5,cat\nblue,2,dog\n"}),
        ["--data: feature column(s) ['colour'] of pets.csv are not numeric"],
    ),
    (
        "csv: an empty label cell",
        via_cli(*CSV_CLI, files={"pets.csv": "weight,label\n1.5,cat\n2,\n3,dog\n"}),
        ["--target: 1 row(s) of pets.csv have no 'label' label: data row(s) 2 "],
    ),
    (
        "csv: a header and no rows",
        via_cli(*CSV_CLI, files={"pets.csv": "weight,label\n"}),
        ["--data: pets.csv has a header but no rows"],
    ),
    ("csv: an empty file", via_cli(*CSV_CLI, files={"pets.csv": ""}), ["pets.csv is empty"]),
    (
        "data: a folder",
        via_cli("optimize", "--data", "{tmp_path}", "--target", "label"),
        ["is a folder; name a data file (.csv, .parquet, .npz) in it"],
    ),
    (
        "data: a missing file of another kind",
        via_cli("optimize", "--data", "pets.txt", "--target", "label"),
        ["--data: no such file 'pets.txt'; expected a data file"],
    ),
    (
        "data: a file of another kind",
        via_cli("optimize", "--data", "pets.tsv", "--target", "label", files={"pets.tsv": "a"}),
        ["--data: 'pets.tsv' is not a .csv, .parquet, .npz file"],
    ),
    (
        "labels: one class only",
        via_cli(*CSV_CLI, files={"pets.csv": "weight,label\n1.5,cat\n2,cat\n"}),
        ["every label is 'cat': a classifier needs at least 2 classes"],
    ),
    (
        "labels: text, the model's width wrong",
        via_optimize(data=(X, np.array([f"d{v}" for v in Y])), build_model=dense_model(64, 7)),
        ["the labels name 10 classes", "give its last layer 10 units"],
    ),
    (
        "labels: one one-hot row with two ones, softmax model",
        via_optimize(data=(X, _one_hot_with_a_double_row()), build_model=_softmax_model()),
        ["1 of ", "label rows are not one-hot (row(s) 7 (2 ones))", "ends in softmax"],
    ),
    (
        "labels: one one-hot row with two ones, logits model",
        via_optimize(data=(X, _one_hot_with_a_double_row())),
        ["row(s) 7 (2 ones)", "too few to call the labels multi-label"],
    ),
    (
        "fit_kwargs: class_weight stacked on every weight scheme",
        via_optimize(fit_kwargs={"class_weight": {0: 1.0, 9: 5.0}}),
        ["fit_kwargs", "class_weight", "searched as the loss's weight schemes"],
    ),
    (
        "tracking_uri: MLflow's file store",
        via_optimize(tracking_uri="file:///tmp/mlruns"),
        ["tracking_uri", "MLFLOW_ALLOW_FILE_STORE"],
    ),
    (
        "cli: --tracking-uri a folder",
        via_cli("demo", "--tracking-uri", "{tmp_path}/mlruns"),
        ["--tracking-uri", "a tracking database (sqlite:///mlflow.db)"],
    ),
    (
        "test_data: integers where the training labels are text",
        via_optimize(data=(X, np.array([f"d{v}" for v in Y])), test_data=(X, Y)),
        ["test_data: the training labels are text", "the test labels are not"],
    ),
    *ROUND_FIVE,
]


@pytest.mark.parametrize(
    ("attempt", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_rejected_naming_the_argument(
    attempt, fragments, tmp_path, mlflow_uri, experiment, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # nothing a case creates (pwned, stores) lands in the repo
    monkeypatch.syspath_prepend(str(ROOT))
    message = attempt({"tmp_path": tmp_path, "mlflow_uri": mlflow_uri, "experiment": experiment})
    for fragment in fragments:
        assert fragment in message, message
    assert SECRET not in message  # a credential, in whatever form it came, stays masked
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "missing.db").exists()  # read-only commands create no file


# (id, YAML text, expected fragment): the message names the file, the key and the reason
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
    ctx = {"tmp_path": tmp_path, "mlflow_uri": mlflow_uri, "experiment": experiment}
    error = via_space_file(text)(ctx)
    assert message in error
    if "YAML" not in message:
        assert str(tmp_path / "space.yaml") in error


def test_nothing_lossearch_loads_can_run_code():
    # child_process.py pickles over the pipe to the training process it started itself
    own_pipe = ROOT / "lossearch" / "child_process.py"
    files = [p for p in (ROOT / "lossearch").rglob("*.py") if p != own_pipe]
    source = "\n".join(p.read_text() for p in files)
    assert not re.search(r"\bimport pickle\b|\bpickle\.load|\beval\(|\bexec\(", source)
    assert not re.search(r"yaml\.load\((?![^)]*SafeLoader)", source)
    assert "yaml.unsafe_load" not in source and "yaml.full_load" not in source


@pytest.mark.slow
def test_credentials_never_reach_mlflow_or_the_logs(
    tmp_path, mlflow_uri, experiment, capsys, caplog
):
    secret = "s3cr3t-pw"
    pg = f"postgresql://postgres:{secret}@127.0.0.1:5432/test"  # trust auth: any password
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(X, Y),
        n_trials=2,
        storage=pg,
        study_name=f"masked-{experiment}",
        selection="best",
        refit=False,
    )
    client = mlflow.MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 3
    for run in runs:
        for value in [*run.data.params.values(), *run.data.tags.values()]:
            assert secret not in value
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.data.tags["storage"] == "postgresql://postgres:***@127.0.0.1:5432/test"
    artifacts = Path(client.download_artifacts(parent.info.run_id, "", str(tmp_path / "a")))
    for path in artifacts.rglob("*"):
        if path.is_file() and path.suffix in (".txt", ".json", ".csv"):
            assert secret not in path.read_text()
    # Errors and log lines mask them too.
    with pytest.raises(ValueError) as info:
        lossearch.optimize(
            dense_model(64, 10), (X, Y), tracking_uri=f"http://bob:{secret}@127.0.0.1:9", **FEW
        )
    assert secret not in str(info.value) and "bob:***@" in str(info.value)
    with pytest.raises(ValueError) as info:
        lossearch.optimize(
            dense_model(64, 10),
            (X, Y),
            storage=f"postgresql://u:{secret}@127.0.0.1:1/x",
            tracking_uri=mlflow_uri,
            experiment_name=experiment,
            **FEW,
        )
    assert secret not in str(info.value)
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert result.study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id


def test_sync_mlflow_refuses_a_study_lossearch_did_not_write(tmp_path, mlflow_uri, experiment):
    storage = f"sqlite:///{tmp_path}/plain.db"
    study = optuna.create_study(storage=storage, study_name="plain")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(ValueError, match="'plain' was not written by lossearch"):
        lossearch.sync_mlflow(storage, "plain", tracking_uri=mlflow_uri, experiment_name=experiment)
    assert optuna.load_study(study_name="plain", storage=storage).user_attrs == {}
    assert mlflow.MlflowClient(mlflow_uri).get_experiment_by_name(experiment) is None


def test_load_loss_on_text_that_is_neither_json_nor_a_file_name():
    with pytest.raises(ValueError, match="no such file"):
        lossearch.load_loss("not a file " * 1000)  # too long to be a file name
    with pytest.raises(ValueError, match="no such file"):
        lossearch.load_loss("nul\x00byte")
