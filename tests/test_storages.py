"""Storage URLs open the right Optuna storage, and each gets a lock other processes see."""

import shutil
import uuid
from pathlib import Path

import optuna
import pytest

from lossearch.study.storages import StudyLock, open_storage, stale_trial_callback


@pytest.mark.parametrize(
    ("url_of", "storage_kind", "lock_kind"),
    [
        (lambda p: f"sqlite:///{p}/s.db", "RDBStorage", "_FileLock"),
        (lambda p: f"journal:///{p}/s.log".replace("///", "////"), "JournalStorage", "_FileLock"),
        (lambda p: "redis://127.0.0.1:6379/15", "JournalStorage", "_RedisLock"),
        (lambda p: "postgresql://postgres@127.0.0.1:5432/test", "RDBStorage", "_PostgresLock"),
    ],
    ids=["sqlite", "journal-file", "journal-redis", "postgresql"],
)
def test_each_storage_gets_a_cross_process_lock(url_of, storage_kind, lock_kind, tmp_path):
    storage = open_storage(url_of(tmp_path))
    assert type(storage).__name__ == storage_kind
    study = optuna.create_study(storage=storage, study_name=f"lock-{uuid.uuid4().hex}")
    lock = StudyLock.for_storage(storage, study.study_name)  # as the search sees it
    assert type(lock._processes).__name__ == lock_kind
    with lock.claim() as claim:
        assert claim.held
    assert not claim.held
    claim.release()  # releasing twice is harmless


def test_rdb_storages_get_heartbeats_and_a_retrying_stale_callback(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=2)
    assert storage.get_heartbeat_interval() == 2 and storage.grace_period == 8
    assert stale_trial_callback(storage) is not None
    assert (
        stale_trial_callback(open_storage(f"sqlite:///{tmp_path}/t.db", heartbeat_interval=None))
        is None
    )


def test_a_server_storage_keeps_one_connection_between_operations():
    # A few workers, each with a storage or two, must fit a server's 100 connections.
    url = "postgresql://postgres@127.0.0.1:5432/test"
    for storage in (open_storage(url), open_storage(url, existing=True)):
        study = optuna.create_study(storage=storage, study_name=f"pool-{uuid.uuid4().hex[:8]}")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        assert storage.engine.pool.size() == 1
        assert storage.engine.pool.checkedin() <= 1
        optuna.delete_study(study_name=study.study_name, storage=storage)


def test_export_and_report_read_a_study_without_writing_beside_it(tmp_path, mlflow_uri):
    from lossearch import cli
    from tests.fakes import FakeRunner, fake_search

    folder = tmp_path / "studies"
    folder.mkdir()
    storage = f"sqlite:///{folder}/study.db"
    fake_search(FakeRunner(), mlflow_uri, "read-only", n_trials=2, storage=storage, study_name="s")
    shutil.rmtree(folder / ".lossearch")  # a study copied here, or written by plain Optuna
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    out = tmp_path / "out"
    out.mkdir()
    where = ["--storage", storage, "--study", "s"]
    assert cli.main(["export", *where, "-o", str(out / "best.json")]) == 0
    assert cli.main(["report", *where, "-o", str(out / "report.html")]) == 0
    # No lock file, no journal, nothing touched: what a read-only folder allows.
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_a_torn_journal_is_refused_before_anything_is_appended_and_repair_fixes_it(
    tmp_path, mlflow_uri, experiment, capsys
):
    """On main a resumed search appended records onto the cut line, and then neither
    lossearch nor optuna.load_study could read the file."""
    from lossearch import cli
    from lossearch.study.stored import StoredStudy
    from tests.fakes import FakeRunner, fake_search

    path = tmp_path / "j.log"
    storage = f"journal:///{path}"
    common = {"storage": storage, "study_name": "s", "selection": "best"}
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=3, **common)
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])  # what `truncate -s -40` (a kill -9 mid-write) leaves
    with pytest.raises(ValueError, match=r"ends with an incomplete record \(\d+ bytes") as refused:
        fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=5, **common)
    assert f"lossearch repair --storage {storage}" in str(refused.value)
    assert path.read_bytes() == whole[:-40]  # nothing appended
    assert cli.main(["repair", "--storage", storage]) == 0
    assert "dropped" in capsys.readouterr().out
    torn = (tmp_path / "j.log.torn").read_bytes()
    assert path.read_bytes() + torn == whole[:-40] and path.read_bytes().endswith(b"\n")
    resumed, _ = fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=5, **common)
    assert len(StoredStudy.load(storage, "s").records()) >= 4
    assert cli.main(["repair", "--storage", storage]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_refuses_files_that_are_not_journals_and_never_overwrites_a_torn_file(
    tmp_path, mlflow_uri, experiment, capsys
):
    """On main, repair truncated an SQLite database named as a journal and moved the last
    line of a text file to .torn; a second repair overwrote the first .torn."""
    from lossearch import cli
    from lossearch.study.storages import repair_journal
    from tests.fakes import FakeRunner, fake_search

    database = tmp_path / "s.db"
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2, storage=f"sqlite:///{database}")
    notes = tmp_path / "notes.txt"
    notes.write_text("first line\nlast line, no newline")
    for path in (database, notes):
        before = path.read_bytes()
        assert cli.main(["repair", "--storage", f"journal:///{path}"]) == 2
        assert "is not an Optuna journal (line " in capsys.readouterr().err
        assert path.read_bytes() == before and not Path(f"{path}.torn").exists()

    journal = tmp_path / "j.log"
    storage = f"journal:///{journal}"
    fake_search(FakeRunner(), mlflow_uri, experiment, n_trials=2, storage=storage)
    whole = journal.read_bytes()
    cuts = [whole.splitlines()[-1][:cut] for cut in (30, 25)]
    for cut in cuts:  # killed mid-record twice, repaired each time
        journal.write_bytes(whole + cut)
        repair = repair_journal(storage)
        assert repair.dropped == len(cut) and journal.read_bytes() == whole
    assert (tmp_path / "j.log.torn").read_bytes() == cuts[0]
    assert (tmp_path / "j.log.2.torn").read_bytes() == cuts[
        1
    ] and repair.kept_in.name == "j.log.2.torn"
    journal.write_bytes(whole + b"not a record")  # a tail no record starts with
    with pytest.raises(ValueError, match="is not an Optuna journal"):
        repair_journal(storage)


def test_reading_a_missing_journal_creates_no_file(tmp_path):
    from lossearch.study.stored import StoredStudy

    with pytest.raises(ValueError, match="no journal file"):
        StoredStudy.load(f"journal:///{tmp_path}/missing.log", "s")
    assert not (tmp_path / "missing.log").exists()


def test_redis_going_away_mid_trial_is_one_clear_storage_error(tmp_path, mlflow_uri, experiment):
    """On main: `UnboundLocalError: cannot access local variable 'updated_state'` (Optuna's
    clean-up failing in turn), not the storage's own error."""
    import socket
    import subprocess
    import time

    import redis

    from tests.fakes import FakeRunner, fake_search

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)

        class StopsRedis(FakeRunner):
            def run(self, config, *args, **kwargs):
                outcome = super().run(config, *args, **kwargs)
                if len(self.calls) == 3:  # mid-trial: the trial's results cannot be told
                    server.terminate()
                    server.wait()
                return outcome

        with pytest.raises(RuntimeError, match="the search stopped: ConnectionError") as stopped:
            fake_search(
                StopsRedis(),
                mlflow_uri,
                experiment,
                n_trials=6,
                storage=f"redis://127.0.0.1:{port}/0",
                study_name="r",
            )
        assert "UnboundLocalError" not in str(stopped.value)
    finally:
        server.kill()
        server.wait()
