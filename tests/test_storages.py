"""Storage URLs open the right Optuna storage, and each gets a lock other processes see."""

import shutil
import uuid

import optuna
import pytest

from lossearch.storages import StudyLock, open_storage, stale_trial_callback


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
