"""Optuna storages by URL, with heartbeats, and one lock per study for the global trial budget.

Several workers (threads, processes or machines) share one study through an
Optuna storage. Optuna already keeps their trials apart; what it does not do is
stop them at exactly ``n_trials`` (``MaxTrialsCallback`` checks after a trial,
so N workers may overshoot by N-1). A worker therefore takes the study's lock
for the few milliseconds it needs to count the budget and create its trial.
The lock lives where the storage lives:

===================================  ============================================
storage URL                          lock
===================================  ============================================
``sqlite:///path.db``                ``flock`` on ``.lossearch/path.db.lock`` beside it
``postgresql://user@host/db``        ``pg_advisory_lock`` in that database
``journal:///path.log``              ``flock`` on ``.lossearch/path.log.lock`` beside it
``redis://host:6379/0``              a Redis lock (``SET NX`` with expiry)
in-memory / anything else            a lock within this process only
===================================  ============================================

RDB storages (SQLite, PostgreSQL, MySQL) get Optuna heartbeats: a worker that
dies mid-trial leaves a trial that the next worker marks FAIL after the grace
period and queues again (:class:`StaleTrialCallback`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import random
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from lossearch._compat import rdb_storage_for_reading
from lossearch._secrets import mask_credentials

HEARTBEAT_INTERVAL = 30  # seconds between a running trial's heartbeats
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
STORAGE_FORMS = (
    "sqlite:///lossearch.db, postgresql://user@host/db, journal:///lossearch.log "
    "(Optuna's JournalStorage on a file) or redis://host:6379/0 (JournalStorage on Redis)"
)


class StaleTrialCallback:
    """Optuna's retry of a trial whose worker died, plus hooks (closing its MLflow run).

    Args:
        max_retry: how many times one trial is queued again before it stays FAIL.
    """

    def __init__(self, max_retry: int = 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.hooks: list[Callable[[optuna.trial.FrozenTrial], None]] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        for hook in self.hooks:
            hook(trial)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _is_journal(storage: object) -> bool:
    return isinstance(storage, str) and "://" in storage and _scheme(storage) == "journal"


def _journal_path(url: str) -> Path:
    # Like SQLite's URLs: journal:///relative.log, journal:////absolute/path.log
    return Path(url.split("://", 1)[1][1:])


def open_storage(
    storage: str | BaseStorage | None,
    *,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int = 2,
    existing: bool = False,
) -> BaseStorage | None:
    """An Optuna storage from a URL (see the module docstring), checked and connected.

    RDB URLs get heartbeats every ``heartbeat_interval`` seconds; a trial silent for
    ``grace_period`` (default: 4 intervals) is failed and retried up to ``max_retry``
    times. A ``BaseStorage`` object is used as it is. ``existing=True`` opens a database
    that holds studies already, for reading: no schema is created and no lock is taken.

    Example:
        >>> storage = open_storage("postgresql://postgres@127.0.0.1/test")  # doctest: +SKIP
    """
    _check_heartbeat(heartbeat_interval, grace_period)
    if storage is None or isinstance(storage, BaseStorage):
        return storage
    if not isinstance(storage, str) or "://" not in storage:
        raise ValueError(
            f"storage: expected an Optuna storage URL such as {STORAGE_FORMS}, "
            f"got {mask_credentials(storage)!r}."
        )
    scheme, shown = _scheme(storage), mask_credentials(storage)
    try:
        if scheme in RDB_SCHEMES:
            sqlite_file = _sqlite_file(storage)
            if sqlite_file and not Path(sqlite_file).parent.is_dir():
                raise ValueError(
                    f"storage: the folder of {shown!r} does not exist; create it or write "
                    "sqlite:///relative/path.db or sqlite:////absolute/path.db."
                )
            if sqlite_file:
                _check_sqlite_file(Path(sqlite_file), shown)
            if existing:  # as plain Optuna reads it: no file or lock is written
                return rdb_storage_for_reading(storage, _engine())
            return _rdb_storage(storage, heartbeat_interval, grace_period, max_retry)
        if scheme == "journal":
            path = _journal_path(storage)
            if not path.name or not path.parent.is_dir():
                raise ValueError(
                    f"storage: {shown!r} names no file in an existing folder; write "
                    "journal:///relative/path.log or journal:////absolute/path.log."
                )
            if not existing:  # appending after a torn record would make the file unreadable
                _refuse_torn_journal(path, shown)
            journal = JournalStorage(JournalFileBackend(str(path), JournalFileOpenLock(str(path))))
            _LOCKS[journal] = lambda name: _FileLock.beside(path)
            return journal
        if scheme in ("redis", "rediss"):
            return _redis_storage(storage)
    except ValueError:
        raise
    except ImportError as exc:
        extra = "redis" if scheme.startswith("redis") else "postgres"
        raise ValueError(
            f"storage: {shown!r} needs a driver that is not installed ({exc.__cause__ or exc}); "
            f"pip install 'lossearch[{extra}]'."
        ) from None
    except Exception as exc:
        message = mask_credentials(str(exc)).splitlines()[0][:300] if str(exc) else ""
        if _damaged_sqlite(exc):
            raise ValueError(
                f"storage: {shown!r} is a damaged SQLite database. Recover what it "
                "holds with `sqlite3 OLD.db .recover | sqlite3 NEW.db`, then point storage= at "
                "the new file."
            ) from None
        raise ValueError(
            f"storage: cannot open {shown!r} ({type(exc).__name__}: {message}). Check that the "
            "server runs and the URL is right."
        ) from None
    raise ValueError(
        f"storage: unknown scheme {scheme!r} in {shown!r}; expected one of {STORAGE_FORMS}."
    )


def _redis_storage(url: str) -> JournalStorage:
    import redis
    from optuna.storages.journal import JournalRedisBackend

    client = redis.Redis.from_url(url)
    client.ping()  # fail now, not at the first trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        journal = JournalStorage(JournalRedisBackend(url))
    _LOCKS[journal] = lambda name: _RedisLock(client, f"lossearch:lock:{name}")
    return journal


# A journal record takes milliseconds to write: its lock held longer is a dead worker's.
STALE_JOURNAL_LOCK = 5


def journal_tail(path: str | Path) -> int:
    """Bytes after a journal file's last complete record: what a writer killed mid-record (or
    a full disk) leaves; 0 when the file ends with a whole record (or is empty). A tail that
    looks torn is read again under the journal's own lock, so that another worker's write
    in progress is not mistaken for one."""
    path = Path(path)
    if not _bytes_after_last_record(path):
        return 0
    lock = JournalFileOpenLock(str(path), grace_period=STALE_JOURNAL_LOCK)
    lock.acquire()
    try:
        return _bytes_after_last_record(path)
    finally:
        lock.release()


def _bytes_after_last_record(path: Path) -> int:
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = end = handle.tell()
        while end > 0:  # back to the last newline, a block at a time
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return size - (start + newline + 1)
            end = start
        return size  # not one complete record


@dataclass(frozen=True)
class Repair:
    """What :func:`repair_journal` did: the bytes it cut from the end of the journal, and
    the new file that keeps them (None when the journal ended with a whole record)."""

    dropped: int
    kept_in: Path | None


def repair_journal(storage: str) -> Repair:
    """Drop the incomplete record at the end of an Optuna journal file.

    The dropped bytes are kept in a new ``<file>.torn`` (``<file>.2.torn``, ... when one is
    there already: a repair never overwrites a file). Every complete record, so every trial
    that finished, stays. A file that is not an Optuna journal (an SQLite database, a text
    file) is refused and left as it is.

    Example:
        >>> repair_journal("journal:///lossearch.log")  # doctest: +SKIP
        Repair(dropped=40, kept_in=PosixPath('lossearch.log.torn'))
    """
    if not isinstance(storage, str) or _scheme(storage) != "journal":
        raise ValueError(
            f"storage: repair takes a journal file URL (journal:///path.log), got "
            f"{mask_credentials(storage)!r}; SQLite, PostgreSQL and Redis keep no partial records."
        )
    path = _journal_path(storage)
    if not path.is_file():
        raise ValueError(f"storage: no journal file {str(path)!r}.")
    lock = JournalFileOpenLock(str(path), grace_period=STALE_JOURNAL_LOCK)
    lock.acquire()
    try:
        torn = _bytes_after_last_record(path)
        _check_journal(path, torn, mask_credentials(storage))
        if not torn:
            return Repair(0, None)
        with path.open("rb+") as handle:
            handle.seek(-torn, 2)
            kept_in = _write_new(path, handle.read())
            handle.truncate(path.stat().st_size - torn)
    finally:
        lock.release()
    return Repair(torn, kept_in)


# How Optuna's JournalFileBackend writes each record: one JSON object a line, op_code first.
JOURNAL_RECORD_START = b'{"op_code":'


def _check_journal(path: Path, torn: int, shown: str) -> None:
    """Refuse to cut a file unless every complete line is an Optuna journal record and the
    torn tail starts as one does."""
    with path.open("rb") as handle:
        body = handle.read(path.stat().st_size - torn)
        tail = handle.read(len(JOURNAL_RECORD_START))
    lines = body.splitlines()
    if torn and not JOURNAL_RECORD_START.startswith(tail[: len(JOURNAL_RECORD_START)]):
        lines.append(tail)  # a tail no record starts with: judged below, and refused
    for number, line in enumerate(lines, 1):
        if not _is_journal_record(line):
            raise ValueError(
                f"storage: {shown!r} is not an Optuna journal (line {number} is no journal "
                "record), so repair left it as it is. Point --storage at the journal file "
                "a search wrote (journal:///path.log)."
            )


def _is_journal_record(line: bytes) -> bool:
    if not line.startswith(JOURNAL_RECORD_START):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _write_new(path: Path, data: bytes) -> Path:
    """``data`` in ``<path>.torn``, or the first of ``<path>.2.torn``, ... not there yet."""
    for n in itertools.count(1):
        target = Path(f"{path}.torn" if n == 1 else f"{path}.{n}.torn")
        try:
            with target.open("xb") as handle:
                handle.write(data)
            return target
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(path: Path, shown: str) -> None:
    """A file that is there but is no SQLite database (overwritten, cut short): said plainly,
    before SQLAlchemy reports it as something else."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # a new database
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ValueError(
            f"storage: {shown!r} is not an SQLite database (its first bytes say otherwise): was "
            "it overwritten, or is it another file? Point storage= at the study's database."
        )


def _damaged_sqlite(exc: BaseException) -> bool:
    """SQLite's own words for a damaged file, anywhere in the chain Optuna wraps them in."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "malformed" in str(exc) or "not a database" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _refuse_torn_journal(path: Path, shown: str) -> None:
    torn = journal_tail(path)
    if torn:
        raise ValueError(
            f"storage: {shown!r} ends with an incomplete record ({torn} bytes after the last "
            "complete one), as a worker killed while writing or a full disk leaves it; nothing "
            f"was written to it. Run `lossearch repair --storage {shown}` to drop those {torn} "
            f"bytes (kept in {path.name}.torn; every finished trial stays), then rerun."
        )


def storage_file(storage: object) -> Path | None:
    """The file a storage URL keeps its study in (SQLite, journal), else None."""
    if not isinstance(storage, str) or "://" not in storage:
        return None
    if _scheme(storage) == "journal":
        return _journal_path(storage)
    found = _sqlite_file(storage)
    return None if found is None else Path(found)


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for other URLs and in-memory SQLite."""
    if _scheme(url) != "sqlite":
        return None
    path = url.split("://", 1)[1][1:]
    return path if path and path != ":memory:" else None


def _engine() -> dict:
    """An RDB storage's engine arguments, a fresh dict (Optuna adds to it in place): one
    connection kept open between operations, more only while a worker's threads (trials, the
    heartbeat) need them at once. SQLAlchemy's default keeps up to 5 idle per storage, and a
    few workers with several storages each then fill a server's 100."""
    return {"pool_size": 1, "max_overflow": 10}


def _check_heartbeat(interval: int | None, grace_period: int | None) -> None:
    """A grace period shorter than two heartbeats lets a worker declare a healthy worker's
    trial stale between two of its beats, and fail it under its feet."""
    for name, value in (("heartbeat_interval", interval), ("grace_period", grace_period)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}: expected whole seconds >= 1, got {value!r}.")
    if interval and grace_period is not None and grace_period < 2 * interval:
        raise ValueError(
            f"grace_period: {grace_period} s is shorter than two heartbeats "
            f"(heartbeat_interval={interval} s), so a healthy worker's trial could be taken "
            f"for dead; use at least {2 * interval} s (the default is {4 * interval})."
        )


def _rdb_storage(url, interval, grace_period, max_retry, attempts=5):
    # Workers creating the schema of a fresh database at the same moment collide:
    # on SQLite they take turns through the study lock's file; on a server they retry.
    sqlite_file = _sqlite_file(url)
    turn = _FileLock.beside(sqlite_file) if sqlite_file else None
    for attempt in range(attempts):
        try:
            with turn or contextlib.nullcontext(), warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=_engine(),
                    heartbeat_interval=interval,
                    grace_period=grace_period or (4 * interval if interval else None),
                    heartbeat_stale_trial_callback=(
                        StaleTrialCallback(max_retry) if interval else None
                    ),
                )
        except Exception as exc:
            collided = type(exc).__name__ == "IntegrityError" or any(
                sign in str(exc) for sign in ("already exists", "duplicate key", "is locked")
            )
            if attempt + 1 == attempts or not collided:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def stale_trial_callback(storage: BaseStorage | None) -> StaleTrialCallback | None:
    """The :class:`StaleTrialCallback` of a storage made by :func:`open_storage`, if any."""
    callback = getattr(storage, "heartbeat_stale_trial_callback", None)
    return callback if isinstance(callback, StaleTrialCallback) else None


def heartbeat_interval(storage: BaseStorage | None) -> int | None:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter else None


# -- the study lock ------------------------------------------------------------------------

# How to lock a journal storage that open_storage made: Optuna's journal backends do not
# say which file or Redis server they use, so the opener remembers it.
_LOCKS: weakref.WeakKeyDictionary[BaseStorage, Callable[[str], object]] = (
    weakref.WeakKeyDictionary()
)


class _FileLock:
    def __init__(self, path: str):
        self.path = path

    @classmethod
    def beside(cls, data_file) -> _FileLock:
        """The lock of ``data_file``, in a ``.lossearch/`` folder next to it: every process
        that opens the file finds the same lock, and the user's folder gets one entry."""
        data_file = Path(data_file)
        return cls(str(data_file.parent / ".lossearch" / f"{data_file.name}.lock"))

    def acquire(self):
        Path(self.path).parent.mkdir(exist_ok=True)
        self.handle = open(self.path, "a")  # noqa: SIM115 - held until release
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def release(self):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()


class _PostgresLock:
    def __init__(self, url: str, key: int):
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self.key, self.text = key, sqlalchemy.text

    def acquire(self):
        self.connection = self.engine.connect()
        self.connection.execute(self.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})

    def release(self):
        try:
            self.connection.execute(self.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            self.connection.close()  # closing the session frees the lock in any case


class _RedisLock:
    def __init__(self, client, name: str):
        # Expiry: a worker killed while holding the lock cannot block the study for long.
        self.lock = client.lock(name, timeout=120)

    def acquire(self):
        self.lock.acquire(blocking=True)

    def release(self):
        with contextlib.suppress(Exception):  # expired: another worker may hold it now
            self.lock.release()


class StudyLock:
    """A lock shared by every worker of one study (see the module docstring).

    ``claim()`` acquires it and returns a handle whose ``release()`` may be
    called early (once the trial exists) and again safely.
    """

    def __init__(self, across_processes=None):
        self._threads = threading.Lock()
        self._processes = across_processes

    @classmethod
    def for_storage(cls, storage: BaseStorage | None, study_name: str) -> StudyLock:
        """The lock for ``storage`` as :func:`open_storage` returned it (or an RDBStorage)."""
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        if storage in _LOCKS:
            return cls(_LOCKS[storage](study_name))
        if isinstance(storage, RDBStorage):
            url = storage.url
            if sqlite_file := _sqlite_file(url):
                return cls(_FileLock.beside(sqlite_file))
            if _scheme(url) in ("postgresql", "postgres"):
                return cls(_PostgresLock(url, key))
        if storage is not None and not isinstance(storage, optuna.storages.InMemoryStorage):
            warnings.warn(
                f"lossearch: no cross-process lock for {type(storage).__name__}; workers in "
                "other processes may overshoot n_trials by a few trials.",
                stacklevel=3,
            )
        return cls(None)

    def claim(self) -> _Claim:
        """Acquire the lock; use as ``with lock.claim():`` or release the handle yourself."""
        return _Claim(self)


class _Claim:
    def __init__(self, lock: StudyLock):
        self.lock, self.held = lock, True
        lock._threads.acquire()
        try:
            if lock._processes is not None:
                lock._processes.acquire()
        except BaseException:
            lock._threads.release()
            raise

    def release(self):
        if not self.held:
            return
        self.held = False
        try:
            if self.lock._processes is not None:
                self.lock._processes.release()
        finally:
            self.lock._threads.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def load_study(storage: str, study_name: str) -> optuna.Study:
    """A stored study, opened without heartbeats (for reading it, not for running trials).

    Raises:
        ValueError: naming the storage URL's problem, or the studies it does hold.
    """
    sqlite_file = _sqlite_file(storage) if isinstance(storage, str) else None
    if sqlite_file and not Path(sqlite_file).is_file():  # opening it would create it
        raise ValueError(
            f"storage: no SQLite file {sqlite_file!r}; check the path (sqlite:///relative.db, "
            "sqlite:////absolute.db). Reading creates no file."
        )
    journal = _journal_path(storage) if _is_journal(storage) else None
    if journal is not None and not journal.is_file():  # opening it would create it
        raise ValueError(
            f"storage: no journal file {str(journal)!r}; check the path (journal:///relative.log, "
            "journal:////absolute.log). Reading creates no file."
        )
    opened = open_storage(storage, heartbeat_interval=None, existing=True)
    try:
        return optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        raise ValueError(
            f"study: no study named {study_name!r} in {mask_credentials(storage)}; "
            f"studies there: {optuna.get_all_study_names(opened)}."
        ) from None
