"""Issue 5's table: bad input on every surface (optimize, the CLI, space files, config JSON,
storage URLs) is rejected before the first trial, with a message naming the argument.
Plus: nothing lossearch loads executes code, and credentials never reach MLflow or logs."""

import contextlib
import io
import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest

import lossearch
from lossearch import cli
from tests.search_helpers import FAST, dense_model, digits

X, Y = digits()
FEW = {"n_trials": 1, "epochs": 1, "show_progress": False}
ROOT = Path(__file__).parent.parent
WORKER = ["worker", "tests.scaleout_model:build_model", "--data", "tests.scaleout_model:load_data"]


class CountingBuilder:
    def __init__(self):
        self.build, self.calls = dense_model(64, 10), 0

    def __call__(self):
        self.calls += 1
        return self.build()


def via_optimize(data=(X, Y), **overrides):
    def attempt(ctx):
        builder = CountingBuilder()
        kwargs = {"tracking_uri": ctx["mlflow_uri"], "experiment_name": ctx["experiment"]}
        with pytest.raises(ValueError) as info:
            lossearch.optimize(builder, data, **{**kwargs, **FEW, **overrides})
        assert builder.calls <= 1  # the probe build at most: no trial ran
        return str(info.value)

    return attempt


def via_cli(*argv):
    def attempt(ctx):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main([a.format(**ctx) for a in argv])
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code
        assert code == 2
        return err.getvalue()

    return attempt


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


def _labels_with(value):
    y = Y.copy()
    y[0] = value
    return y


def _nan_features():
    x = X.copy()
    x[1, 2] = np.nan
    return x


CONFIG = {"format": "lossearch.loss/1", "family": "ce", "task": "multiclass"}

# (id, attempt, fragments the message must hold)
CASES = [
    # optimize
    ("labels as 2-D of wrong width", via_optimize((X, np.eye(4)[Y % 4])), ["data:"]),
    ("label out of range", via_optimize((X, _labels_with(10))), ["outside [0, 10)"]),
    ("NaN features", via_optimize((_nan_features(), Y)), ["NaN"]),
    (
        "a class with zero samples",
        via_optimize((X, np.where(Y == 9, 8, Y))),
        ["data: class '9' has no samples"],
    ),
    ("unknown loss family", via_optimize(space={"families": {"dice": {}}}), ["families.dice"]),
    ("unknown objective", via_optimize(objective="auc_roc"), ["objective:"]),
    ("n_trials zero", via_optimize(n_trials=0), ["n_trials"]),
    # storage URLs
    ("storage unknown scheme", via_optimize(storage="ftp://host/db"), ["storage:", "'ftp'"]),
    ("storage not a URL", via_optimize(storage="lossearch.db"), ["storage:", "sqlite:///"]),
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
    # the CLI
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
        via_cli("export", "--storage", "sqlite:///{tmp_path}/e.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    (
        "report of an unknown study",
        via_cli("report", "--storage", "sqlite:///{tmp_path}/e.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    (
        "report from a missing folder",
        via_cli("report", "--storage", "sqlite:///{tmp_path}/none/e.db", "--study", "nope"),
        ["does not exist"],
    ),
    (
        "sync of an unknown study",
        via_cli("sync-mlflow", "--storage", "sqlite:///{tmp_path}/e.db", "--study", "nope"),
        ["study: no study named 'nope'"],
    ),
    # search-space files
    ("space: malformed YAML", via_space_file("families: {ce: {}\n"), ["not valid YAML"]),
    (
        "space: unknown parameter",
        via_space_file("families: {focal: {gama: 2}}"),
        ["families.focal.gama"],
    ),
    (
        "space: python object tag",
        via_space_file("families: !!python/object/apply:os.system ['touch pwned']"),
        ["space"],
    ),
    # config JSON
    ("config: not JSON", via_config_json("{not json"), ["not valid JSON"]),
    ("config: unknown family", via_config_json({**CONFIG, "family": "dice"}), ["family"]),
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
    assert not (tmp_path / "pwned").exists()


def test_the_table_covers_every_surface():
    assert len(CASES) >= 25


def test_nothing_lossearch_loads_can_run_code():
    source = "\n".join(p.read_text() for p in (ROOT / "lossearch").rglob("*.py"))
    assert not re.search(r"\bimport pickle\b|\bpickle\.load|\beval\(|\bexec\(", source)
    assert not re.search(r"yaml\.load\((?![^)]*SafeLoader)", source)
    assert "yaml.unsafe_load" not in source and "yaml.full_load" not in source


@pytest.mark.slow
def test_credentials_never_reach_mlflow_or_the_logs(
    tmp_path, mlflow_uri, experiment, capsys, caplog
):
    secret = "s3cr3t-pw"
    pg = f"postgresql://postgres:{secret}@127.0.0.1:5432/test"  # trust auth: any password
    result = lossearch.optimize(
        dense_model(64, 10),
        (X, Y),
        space="quick",
        n_trials=2,
        storage=pg,
        study_name=f"masked-{experiment}",
        selection="best",
        refit=False,
        tracking_uri=mlflow_uri,
        experiment_name=experiment,
        **FAST,
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
