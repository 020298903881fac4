"""No secret is ever shown: passwords in the storage URL (user-info and query string) and in
the tracking URI reach no MLflow param, tag or artifact, no study attribute, no log line,
no stdout or stderr and no error text, from ``optimize`` or from any CLI command."""

import uuid
from pathlib import Path

import mlflow
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lossearch
from lossearch import cli
from lossearch._secrets import mask_credentials
from tests.mlflow_server import MlflowServer
from tests.search_helpers import dense_model, digits

pytestmark = pytest.mark.slow

# Each password holds "@", ":" or "/": a mask that splits at the first "@" (main until 0.2)
# shows what follows it, so every distinctive tail is looked for too.
STORAGE_SECRET = "qs:s3/cr3t-QSTAIL"  # in the query string (no "@": SQLAlchemy splits at it)
TRACKING_SECRET = "ht@tp:s3cr3t-HTTPTAIL"  # an HTTP client splits user-info at the last "@"
# SQLAlchemy takes no "@" in a password: ":", "/", and "#", "?" and a space (main until
# 2026-12 showed a password holding one of these three whole)
CLI_SECRET = "ui:s3/c#r?3 t-UITAIL"
SECRETS = (STORAGE_SECRET, TRACKING_SECRET, CLI_SECRET, "QSTAIL", "HTTPTAIL", "UITAIL", "r?3 t")
PG = "postgresql://postgres{auth}@127.0.0.1:5432/test{query}"  # trust auth: any password
TINY = {"epochs": 1, "batch_size": 64, "cv": None, "confirm_seeds": 0, "seed": 0}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as running:
        yield running


def with_password(uri: str, secret: str) -> str:
    return uri.replace("http://", f"http://alice:{secret}@")


def assert_no_secret(text: str, where: str):
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{leaked} shown in {where}: ...{text[-500:]}"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=pw&sslmode=require", "?password=***&sslmode=require"),
        ("mysql://h/db?sslmode=x&PASSWD=pw", "&PASSWD=***"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("s3://b/k?X-Amz-Credential=pw&token=pw", "?X-Amz-Credential=***&token=***"),
        ("http://h:5000/?api_key=pw#frag", "?api_key=***#frag"),
        # split at the last "@" before the query, as the clients do
        ("redis://:p@w@127.0.0.1:6390/0", "redis://:***@127.0.0.1:6390/0"),
        ("http://alice:p@w:x/y@127.0.0.1:5099/#/runs", "http://alice:***@127.0.0.1:5099/#/runs"),
        ("postgresql://u@h/db?password=p@w:x/y", "postgresql://u@h/db?password=***"),
        ("http://pwTOKEN@127.0.0.1:5099", "http://***@127.0.0.1:5099"),  # a token as user
    ],
)
def test_mask_credentials_hides_user_info_and_secret_query_values(text, masked):
    assert masked in mask_credentials(text) and "pw" not in mask_credentials(text).split("//")[1]


@settings(max_examples=300, deadline=None)
@given(
    password=st.lists(
        st.one_of(
            st.characters(min_codepoint=0x20, max_codepoint=0x7E),
            st.sampled_from(["://", "@h", "#", "?", " "]),
        ),
        min_size=1,
    ).map("".join),
    scheme=st.sampled_from(["postgresql", "postgresql+psycopg", "redis", "http", "mysql"]),
    quote=st.sampled_from(["", "'", '"']),
)
def test_a_password_of_any_printable_characters_is_masked(password, scheme, quote):
    """Every printable character in a password, the URL alone or quoted in a message."""
    url = f"{scheme}://alice:{password}@127.0.0.1:5432/db"
    text = f"storage: {quote}{url}{quote} could not be opened"
    assert mask_credentials(text) == (
        f"storage: {quote}{scheme}://alice:***@127.0.0.1:5432/db{quote} could not be opened"
    )
    assert mask_credentials(url) == f"{scheme}://alice:***@127.0.0.1:5432/db"


def test_a_search_shows_no_secret_anywhere(server, tmp_path, capfd, caplog):
    study = f"secret-{uuid.uuid4().hex[:8]}"
    storage = PG.format(auth="", query=f"?password={STORAGE_SECRET}")
    tracking = with_password(server.uri, TRACKING_SECRET)
    result = lossearch.optimize(
        dense_model(64, 10),
        digits(),
        space="quick",
        n_trials=2,
        storage=storage,
        study_name=study,
        tracking_uri=tracking,
        experiment_name=study,
        registered_model_name=study,
        show_progress=False,
        **TINY,
    )
    assert result.model_uri is not None
    with pytest.raises(ValueError) as unreachable:  # the storage's own error text
        lossearch.optimize(
            dense_model(64, 10),
            digits(),
            storage=f"postgresql://u@127.0.0.1:1/x?password={STORAGE_SECRET}",
            tracking_uri=tracking,
            n_trials=1,
        )
    assert_no_secret(str(unreachable.value), "the storage error")
    out = capfd.readouterr()
    assert_no_secret(out.out, "stdout")
    assert_no_secret(out.err, "stderr")
    assert "View run" not in out.out  # MLflow's per-run URL lines (they carry the URI)
    assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "the log")
    sweep_mlflow(server.uri, study, tmp_path)
    sweep_study(storage, study)


def sweep_mlflow(uri: str, experiment: str, tmp_path: Path):
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) >= 3  # the parent and its trials
    for run in runs:
        values = [*run.data.params.values(), *run.data.tags.values()]
        assert_no_secret("\n".join(values), f"run {run.info.run_name}'s params and tags")
        folder = Path(
            client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
        )
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix not in (".keras", ".png"):
                assert_no_secret(path.read_text(errors="replace"), str(path))
    for model in client.search_logged_models([runs[0].info.experiment_id]):
        assert_no_secret(str(model.params) + str(model.tags), f"logged model {model.name}")


def sweep_study(storage: str, name: str):
    rdb = optuna.storages.RDBStorage(storage)
    study_id = rdb.get_study_id_from_name(name)
    attributes = [rdb.get_study_user_attrs(study_id), rdb.get_study_system_attrs(study_id)]
    for trial in rdb.get_all_trials(study_id, deepcopy=False):
        attributes += [trial.user_attrs, trial.system_attrs, trial.params]
    assert_no_secret(repr(attributes), "the study's attributes")


def test_every_cli_command_shows_no_secret(server, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = f"cli-secret-{uuid.uuid4().hex[:8]}"
    storage = PG.format(auth=f":{CLI_SECRET}", query="")
    tracking = with_password(server.uri, TRACKING_SECRET)
    where = ["--storage", storage, "--study", study]
    commands = [
        ["demo", "--trials", "2", "--epochs", "1", "--cv", "0", "--confirm-seeds", "0"]
        + ["--no-progress", "--tracking-uri", tracking, "--experiment", study, *where],
        ["export", *where, "-o", "exported.json"],
        ["report", *where, "-o", "report.html"],
        ["sync-mlflow", *where, "--tracking-uri", tracking, "--experiment", study],
        ["export", "--storage", storage, "--study", "no-such-study"],  # an error
        ["report", "--storage", storage.replace("5432", "1"), "--study", study],  # unreachable
    ]
    codes = [cli.main(argv) for argv in commands]
    assert codes == [0, 0, 0, 0, 2, 2]
    out = capfd.readouterr()
    assert "alice:***@" in out.out  # the "open MLflow" hint names the server, masked
    assert_no_secret(out.out, "the CLI's stdout")
    assert_no_secret(out.err, "the CLI's stderr")
    for name in ("exported.json", "report.html"):
        assert_no_secret((tmp_path / name).read_text(), name)
