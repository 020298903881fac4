"""Killing a writer, or cutting its file, at random points of a write loses no completed
trial: every trial the writer saw COMPLETE is read back COMPLETE, or the error says how to
repair the storage (Hypothesis picks the points; each storage kind is a real one)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossearch.study.storages import journal_tail, open_storage, repair_journal
from lossearch.study.stored import StoredStudy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "durability_writer.py"
EXAMPLES = settings(
    max_examples=int(os.environ.get("DURABILITY_EXAMPLES", 5)),  # 5 x 5 real kills: ~40 s
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _killed_writer(url: str, study: str, seconds: float) -> list[int]:
    """Run the writer for ``seconds``, SIGKILL it, return the trials it saw complete."""
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), url, study],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    first = writer.stdout.readline()  # started: at least one trial is complete
    assert first.strip().isdigit() or time.monotonic() > deadline, "the writer did not start"
    time.sleep(seconds)
    writer.send_signal(signal.SIGKILL)
    rest, _ = writer.communicate()
    return [int(n) for n in (first + rest).split()]


def _readable(url: str, study: str) -> set[int]:
    """The numbers of the COMPLETE trials lossearch reads back (none yet is an answer too: a
    cut before the first trial completed leaves the study and no trial)."""
    return {r.number for r in StoredStudy.load(url, study, require_results=False).records()}


def _storages(tmp_path) -> dict:
    name = uuid.uuid4().hex[:8]
    return {
        "sqlite": f"sqlite:///{tmp_path}/{name}.db",
        "journal": f"journal:///{tmp_path}/{name}.log",
        "redis": "redis://127.0.0.1:6379/0",
        "postgresql": "postgresql://postgres@127.0.0.1:5432/test",
    }


@pytest.mark.parametrize("kind", ["sqlite", "journal", "redis", "postgresql"])
@EXAMPLES
@given(seconds=st.floats(0.0, 0.6))
def test_a_killed_writer_loses_no_completed_trial(kind, seconds, tmp_path):
    url, study = _storages(tmp_path)[kind], f"durability-{uuid.uuid4().hex[:8]}"
    completed = _killed_writer(url, study, seconds)
    if kind == "journal" and journal_tail(url.split("://", 1)[1][1:]):
        with pytest.raises(ValueError, match="lossearch repair --storage"):
            open_storage(url)  # torn: refused before anything is appended ...
        repair_journal(url)  # ... and repaired
    assert set(completed) <= _readable(url, study)
    open_storage(url)  # the next worker can go on


@EXAMPLES
@given(cut=st.floats(0.0, 1.0))
def test_a_journal_cut_anywhere_keeps_every_trial_before_the_cut(cut, tmp_path_factory):
    """What a full disk or a kill -9 mid-write leaves, at any byte."""
    folder = tmp_path_factory.mktemp("cut")
    url, study = f"journal:///{folder}/j.log", "cut"
    path = folder / "j.log"
    _killed_writer(url, study, 0.3)
    repair_journal(url)
    ends, whole = _trial_ends(url, study), path.read_bytes()
    at = int(len(whole) * cut)
    path.write_bytes(whole[:at])
    if journal_tail(path):
        with pytest.raises(ValueError, match="lossearch repair --storage"):
            open_storage(url)
        repair_journal(url)
    if path.stat().st_size == 0:
        return  # cut before the study was created: nothing was complete
    kept = {n for n, end in ends.items() if end <= at}
    assert kept <= _readable(url, study)


def _trial_ends(url: str, study: str) -> dict[int, int]:
    """Each COMPLETE trial's end in the journal file: the byte after the record that
    completed it (found by replaying growing prefixes)."""
    path = Path(url.split("://", 1)[1][1:])
    lines = path.read_bytes().splitlines(keepends=True)
    ends, offset, probe = {}, 0, path.with_suffix(".probe")
    for line in lines:
        offset += len(line)
        probe.write_bytes(path.read_bytes()[:offset])
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(probe))
        )
        try:
            trials = optuna.load_study(study_name=study, storage=storage).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
        except KeyError:
            continue
        for t in trials:
            ends.setdefault(t.number, offset)
    probe.unlink()
    return ends
