"""Ctrl-C always stops a search: a real SIGINT sent to a running ``lossearch optimize``
process, in a later trial (on main, during the second or third trial it sometimes surfaced
inside TensorFlow as "SystemError: ... bad argument to internal function" or "TypeError:
Failed to convert elements of (None,) to Tensor", the trial was recorded as failed and the
search ran on to exit code 0). The process exits 130, the interrupted trial is marked so,
and a rerun completes the budget, the interrupted recipe included."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from lossearch.study import state as keys

pytestmark = pytest.mark.slow


def _csv(path):
    import pandas as pd

    from lossearch.datasets import long_tailed_digits

    x, y = long_tailed_digits(imbalance=10)
    table = {f"px{i}": x[:, i] for i in range(64)} | {"label": y}
    pd.DataFrame(table).to_csv(path, index=False)


def _command(tmp_path, trials: int) -> list[str]:
    return [
        *(sys.executable, "-c", "import sys; from lossearch.cli import main; sys.exit(main())"),
        *("optimize", "--data", "digits.csv", "--target", "label", "--trials", str(trials)),
        *("--epochs", "15", "--cv", "0", "--confirm-seeds", "0", "--no-progress"),
        *("--storage", f"sqlite:///{tmp_path}/s.db", "--study", "s"),
        *("--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"),
    ]


def _trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    try:
        return optuna.load_study(study_name="s", storage=storage).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def _wait_for_training(tmp_path, number: int, proc, timeout: float = 240) -> None:
    """Until trial ``number`` has reported two epochs (it is inside ``fit``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        trials = _trials(tmp_path)
        if len(trials) > number and len(trials[number].intermediate_values) >= 2:
            return
        time.sleep(0.2)
    pytest.fail(f"trial {number} never trained")


def _restore_default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python installs its own handler on start


def test_ctrl_c_in_a_later_trial_stops_the_search_and_a_rerun_completes_it(tmp_path):
    number = 2  # the third trial: where main's Ctrl-C was swallowed
    _csv(tmp_path / "digits.csv")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        _command(tmp_path, 6),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_restore_default_sigint,
    )
    _wait_for_training(tmp_path, number, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    trials = _trials(tmp_path)
    interrupted = [t for t in trials if t.user_attrs.get(keys.INTERRUPTED)]
    assert [t.number for t in interrupted] == [number]
    assert not [t for t in trials if t.user_attrs.get(keys.FAIL_REASON)], "a trial failed"
    started = [t for t in trials if t.state != TrialState.WAITING]  # queued recipes wait
    assert len(started) == number + 1  # nothing ran after the Ctrl-C

    done = subprocess.run(
        _command(tmp_path, 6), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = _trials(tmp_path)
    finished = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and not t.user_attrs.get(keys.INTERRUPTED)
    ]
    assert len(finished) == 6  # the budget, the interrupted trial not counted
    recipe = interrupted[0].user_attrs.get(keys.RECIPE)
    assert recipe in {t.user_attrs.get(keys.RECIPE) for t in finished}  # run again
