"""The examples run as users run them, and the CLI commands do what they say."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

import lossearch
from lossearch import cli
from tests.mlflow_store import new_store
from tests.search_helpers import runs_of

ROOT = Path(__file__).parent.parent
# The examples as users run them, on the small budget they offer for tests.
# MLflow's default store, as users get it: mlflow.set_tracking_uri in earlier tests exports
# MLFLOW_TRACKING_URI, which the example processes would otherwise inherit.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONPATH": str(ROOT),
    "LOSSEARCH_EXAMPLE_BUDGET": "small",
}


def _run_example(name, cwd, *args):
    new_store(cwd / "mlflow.db")  # MLflow's default store, found there migrated (a second run)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_quickstart_then_load_best_loss(tmp_path):
    out = _run_example("quickstart.py", tmp_path)
    assert "recall(CE)" in out and (tmp_path / "best_loss.json").exists()
    out = _run_example("load_best_loss.py", tmp_path)
    assert "trained 10 epochs" in out and (tmp_path / "model_with_best_loss.keras").exists()
    _, parents, children = runs_of(f"sqlite:///{tmp_path}/mlflow.db", "examples")
    assert len(parents) == 1 and len(children) == 3  # the small budget


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binary_fraud.py", "multilabel.py", "tune_learning_rate.py"])
def test_example_runs(name, tmp_path):
    out = _run_example(name, tmp_path)
    assert "pick:" in out and "vs CE:" in out


def test_spaces_lists_the_bundled_spaces(capsys):
    assert cli.main(["spaces"]) == 0
    out = capsys.readouterr().out
    for name in ("default", "long_tail", "binary", "multilabel", "quick"):
        assert name in out
    assert "logit_adjusted" in out
    lines = out.splitlines()
    (default,) = [line for line in lines if line.startswith("default ")]
    assert "Chosen by task" in default  # its own description, not long_tail's
    (long_tail,) = [line for line in lines if line.startswith("long_tail ")]
    assert "Long-tailed multiclass" in long_tail


@pytest.mark.slow
def test_optimize_and_export_commands(tmp_path, monkeypatch, capsys, mlflow_uri):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel.py").write_text(
        "import keras\n"
        "from lossearch.datasets import long_tailed_digits\n"
        "def build_model():\n"
        "    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])\n"
        "def load_data():\n"
        "    return long_tailed_digits(10)\n"
    )
    storage = f"sqlite:///{tmp_path}/cli.db"
    code = cli.main(
        [
            "optimize",
            "mymodel:build_model",
            "--data",
            "mymodel:load_data",
            "--space",
            "quick",
            "--trials",
            "3",
            "--epochs",
            "2",
            "--cv",
            "0",
            "--confirm-seeds",
            "1",
            "--storage",
            storage,
            "--study",
            "cli",
            "--tracking-uri",
            mlflow_uri,
            "--experiment",
            "cli",
            "--no-progress",
            "-o",
            "opt.json",
        ]
    )
    assert code == 0
    assert "best loss written to opt.json" in capsys.readouterr().out
    assert cli.main(["export", "--storage", storage, "--study", "cli", "-o", "exported.json"]) == 0
    exported = json.loads((tmp_path / "exported.json").read_text())
    assert exported == json.loads((tmp_path / "opt.json").read_text())
    assert exported["format"] == "lossearch.loss/1"
    _, parents, children = runs_of(mlflow_uri, "cli")
    assert len(parents) == 1 and len(children) == 3


def test_cli_errors_are_one_clear_line(capsys, tmp_path):
    assert cli.main(["export", "--storage", f"sqlite:///{tmp_path}/none.db", "--study", "x"]) == 2
    assert "storage: no SQLite file" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert cli.main(["optimize", "nomodule:build", "--data", "nomodule:load"]) == 2
    assert "build_model: cannot import 'nomodule'" in capsys.readouterr().err


FAILING_BUILDER = """
import keras
from lossearch.datasets import long_tailed_digits

calls = 0


def build_model():  # the probe's two builds work, every trial's fails
    global calls
    calls += 1
    if calls > 2:
        raise MemoryError("out of memory while building")
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])


def load_data():
    return long_tailed_digits()
"""


def test_a_failed_search_is_one_line_and_debug_adds_the_traceback(tmp_path, capsys):
    (tmp_path / "failing.py").write_text(FAILING_BUILDER)
    argv = ["optimize", f"{tmp_path}/failing.py:build_model", "--data"]
    argv += [f"{tmp_path}/failing.py:load_data", "--trials", "2", "--no-progress"]
    argv += ["--cv", "0", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "-o"]
    argv += [str(tmp_path / "best.json")]
    assert cli.main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        "lossearch: error: no trial completed; first failure: MemoryError: out of memory "
        "while building"
    ]
    assert cli.main(["--debug", *argv]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_command_logs_a_parent_and_one_child_per_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best_loss.json").write_text("the user's own")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert (
        cli.main(
            [
                *("demo", "--trials", "4", "--epochs", "2", "--cv", "0", "--confirm-seeds", "1"),
                *("--no-progress", "--tracking-uri", "sqlite:///mlflow.db"),  # relative
                *("--register-model", "demo-digits"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    # the demo's own folder: a best_loss.json of the user's (on main: replaced) stays
    assert (tmp_path / "lossearch-demo" / "best_loss.json").exists()
    assert (tmp_path / "best_loss.json").read_text() == "the user's own"
    assert "best loss written to lossearch-demo/best_loss.json" in out
    # The printed command names the store by its absolute path (right from any folder), with
    # the port that the printed address opens, on the experiment's runs.
    command = next(line.strip() for line in out.splitlines() if " ui --backend-store-uri " in line)
    assert command.split(" ui ")[0] in ("mlflow", f"{sys.executable} -m mlflow")
    assert f"--backend-store-uri sqlite:///{tmp_path}/mlflow.db --port 5000" in command
    experiment_id = mlflow.MlflowClient(uri).get_experiment_by_name("lossearch").experiment_id
    assert f"open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs" in out
    runs = mlflow.search_runs(experiment_names=["lossearch"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    model_uri = parents[0].data.tags["model_uri"]
    assert f"model logged as {model_uri}" in out
    registered = mlflow.MlflowClient(uri).search_model_versions("name = 'demo-digits'")
    assert [v.run_id for v in registered] == [parents[0].info.run_id]
    assert all(
        "loss.family" in c.data.params and "recall.digit9" in c.data.metrics
        for c in children
        if c.data.tags["state"] == "COMPLETE"
    )


def test_help_shows_every_default_and_describes_the_imbalance(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["demo", "--help"])
    assert done.value.code == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "--trials TRIALS finished trials to run (default: 10)" in flat
    assert "--imbalance IMBALANCE how long the tail is" in flat and "(default: 20.0)" in flat
    with pytest.raises(SystemExit):
        cli.main(["worker", "--help"])
    worker = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in worker  # on main: required options, two defaults
    assert "--study STUDY study name (resumable) --tracking-uri" in worker


def _as_the_command(argv, cwd=ROOT, heavy=("tensorflow", "keras")):
    """``lossearch ARGV`` in a fresh process: its exit code, and whether any of the ``heavy``
    modules (Keras by default) got loaded."""
    script = (
        f"import sys; sys.argv = ['lossearch', *{argv!r}]\n"
        "from lossearch import cli\n"
        "try:\n    code = cli.main()\nexcept SystemExit as done:\n    code = done.code\n"
        f"print('loaded:', any(m in sys.modules for m in {heavy!r}), code)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as users run it
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env
    )
    return done.stdout.strip(), done.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["demo", "--help"], 0),
        (["worker", "-h"], 0),
        ([], 2),
        (["--version"], 0),  # on main: no --version
        (["spaces"], 0),  # on main: 9 s, TensorFlow loaded to list five files
        (["demo", "--trials", "0"], 2),  # on main: 16 s to print one error line
        (["export", "--storage", "sqlite:///x.db", "--study", "s", "-o", "/no/such/x.json"], 2),
        # a data file's errors: on main 7-16 s, TensorFlow loaded first
        (["optimize", "--data", "missing.csv", "--target", "y"], 2),
        (["demo", "--space", "nope"], 2),  # no "or a dict", and no TensorFlow to say so
        (["demo", "--objective", "nope"], 2),  # no "or a callable"
        (["optimize", "--data", "pets.txt", "--target", "y"], 2),
        (["worker", "m:build", "--data", "missing.npz", "--storage", "sqlite:///s.db"], 2),
    ],
)
def test_help_version_spaces_and_argument_errors_answer_without_tensorflow(argv, code):
    out, err = _as_the_command(argv)
    assert out.endswith(f"loaded: False {code}"), err


def test_export_and_report_answer_without_tensorflow(tmp_path, mlflow_uri, experiment):
    # on main: 9-14 s each, TensorFlow loaded to read a study and write JSON or HTML; then
    # 1-2 s with matplotlib drawing the report's charts and alembic opening the storage
    from tests.fakes import FakeRunner, fake_search

    storage = f"sqlite:///{tmp_path}/study.db"
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2, storage=storage, study_name="s")
    where = ["--storage", storage, "--study", "s"]
    for argv in (["export", *where, "-o", "b.json"], ["report", *where, "-o", "r.html"]):
        heavy = ("tensorflow", "keras", "sklearn", "matplotlib", "alembic", "mlflow")
        out, err = _as_the_command(argv, cwd=tmp_path, heavy=heavy)
        assert out.endswith("loaded: False 0"), err
    config = json.loads((tmp_path / "b.json").read_text())
    assert config["format"] == "lossearch.loss/1"
    assert lossearch.LossConfig.from_dict(config).build()  # the exported loss builds in Keras
    assert "<html" in (tmp_path / "r.html").read_text().lower()


def test_the_command_loads_keras_itself_for_what_needs_it(tmp_path, mlflow_uri, experiment):
    from tests.fakes import FakeRunner, fake_search

    storage = f"sqlite:///{tmp_path}/study.db"
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2, storage=storage, study_name="s")
    out, err = _as_the_command(
        ["sync-mlflow", "--storage", storage, "--study", "s", "--tracking-uri", mlflow_uri],
        cwd=tmp_path,
    )
    assert out.endswith("loaded: True 0"), err
    assert not any(line in err for line in TF_STARTUP_LINES)  # loaded quietly, unasked


TF_STARTUP_LINES = ("cuda drivers", "cpu_feature_guard", "absl::InitializeLog", "oneDNN")


def test_tensorflow_start_up_lines_come_back_when_asked_for():
    # Hidden by default: test_the_command_loads_keras_itself_for_what_needs_it (one TensorFlow
    # start fewer than checking both here).
    done = subprocess.run(
        [sys.executable, "-c", "import lossearch, keras; print(keras.backend.backend())"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "LOSSEARCH_TF_LOGS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "0",
        },
    )
    assert done.stdout.strip() == "tensorflow", done.stderr
    assert any(line in done.stderr for line in TF_STARTUP_LINES), done.stderr


def test_the_mlflow_hint_after_a_search_asks_mlflow_nothing(capsys, monkeypatch):
    """On main it called MlflowClient.get_run: with MLflow gone after the search, a finished
    search (its JSON already written) exited 1 on that call."""
    from types import SimpleNamespace

    import mlflow

    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "http://127.0.0.1:1")
    result = SimpleNamespace(model_uri=None, mlflow_run_id="abc", mlflow_experiment_id="7")
    cli._print_mlflow_hint(result, "exp")
    assert "http://127.0.0.1:1/#/experiments/7/runs" in capsys.readouterr().out


@pytest.mark.slow
def test_a_csv_with_text_labels_goes_through_optimize_to_a_model_file(tmp_path, monkeypatch):
    """On main --data took only MODULE:NAME, text labels were refused and optimize wrote no
    model file."""
    import lossearch
    from lossearch.datasets import long_tailed_digits

    monkeypatch.chdir(tmp_path)
    x, y = long_tailed_digits(imbalance=5)
    names = np.array([f"digit {d}" for d in range(10)])[y]
    table = {f"px{i}": x[:, i] for i in range(64)} | {"label": names}
    import pandas as pd

    pd.DataFrame(table).to_csv("digits.csv", index=False)
    argv = ["optimize", "--data", "digits.csv", "--target", "label", "-m", "model.keras"]
    argv += ["--trials", "2", "--epochs", "2", "--cv", "0", "--confirm-seeds", "0"]
    argv += ["--no-progress", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    assert cli.main(argv) == 0
    model = lossearch.load_model("model.keras")
    assert model.predict(x[:3], verbose=0).shape == (3, 10)
    config = lossearch.LossConfig.from_json("best_loss.json")
    assert list(config.class_names) == sorted(set(names))  # the labels kept as class names
    assert cli.main([*argv[:5], "-o", "digits.csv"]) == 2  # the data file is an input


def test_label_codes_name_the_classes_where_the_command_builds_the_model():
    """On main labels 1/2/3 or -1/+1 in a CSV failed as out of range for the MLP the CLI built
    itself; they are class names, in numeric order (+1 the positive class)."""
    x = np.zeros((4, 2))
    data, names = cli._coded_labels((x, np.array([3, 1, 2, 10])))
    assert names == ["1", "2", "3", "10"] and list(data[1]) == ["3", "1", "2", "10"]
    assert cli._coded_labels((x, np.array([-1.0, 1.0, 1.0, -1.0])))[1] == ["-1", "1"]
    assert cli._coded_labels((x, np.array([0, 1, 2, 1])))[1] is None  # indices already
    assert cli._coded_labels((x, np.array(["a", "b", "a", "b"])))[1] is None  # text


@pytest.mark.slow
def test_a_csv_labelled_1_2_3_goes_through_optimize(tmp_path, monkeypatch):
    import pandas as pd

    import lossearch
    from lossearch.datasets import long_tailed_digits

    monkeypatch.chdir(tmp_path)
    x, y = long_tailed_digits(imbalance=3)
    keep = y < 3
    table = {f"px{i}": x[keep, i] for i in range(64)} | {"label": y[keep] + 1}
    pd.DataFrame(table).to_csv("codes.csv", index=False)
    argv = ["optimize", "--data", "codes.csv", "--target", "label", "--trials", "2"]
    argv += ["--epochs", "1", "--cv", "0", "--confirm-seeds", "0", "--no-progress"]
    assert cli.main([*argv, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]) == 0
    assert list(lossearch.LossConfig.from_json("best_loss.json").class_names) == ["1", "2", "3"]


def test_a_new_tracking_database_is_created_without_mlflows_notes(tmp_path):
    """On main every first search on a new SQLite store printed MLflow's INFO lines
    ("Creating initial MLflow database tables...") in the middle of lossearch's output."""
    script = (
        "import mlflow, lossearch.tracking\n"
        f"mlflow.set_tracking_uri('sqlite:///{tmp_path}/new.db')\n"
        "mlflow.search_experiments()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new.db").exists()
    assert "Creating initial MLflow database tables" not in done.stderr + done.stdout
