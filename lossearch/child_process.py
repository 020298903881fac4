"""Trainings in a child process, replaced every N trainings: flat memory for long searches.

TensorFlow keeps part of every traced train step for the life of the process (a few
MiB per training, even after ``clear_session``), so a worker that trains for days
grows without bound. :class:`ChildProcessRunner` runs each training in a child
process started with ``spawn`` (a forked TensorFlow is unsafe) and replaces it after
``recycle_every`` trainings; the search itself (Optuna, MLflow, the records) stays in
this process.

What crosses the pipe, per training: the config, seed and epochs out; the model's
``hp`` draws and each epoch's report (prune or not) as requests answered by this
process (its ``Float``, ``Int``, ... calls are made on the real ``hp``), so the sampler,
the pruner and MLflow see exactly what they see in process;
the scored :class:`~lossearch.runner.TrialOutcome` (no model) back. The refit stays
in this process: its model is the search's result.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from typing import Any

from lossearch.hyperparameters import DefaultHyperParameters, HyperParameters
from lossearch.runner import TrialOutcome, TrialRunner

_SPAWN = multiprocessing.get_context("spawn")
PR_SET_PDEATHSIG = 1  # prctl(2)
STARTUP_SECONDS = 300  # importing TensorFlow and the user's module; generous for slow disks


class ChildProcessDied(RuntimeError):
    """The training process ended without answering (killed, out of memory, crashed)."""


def picklable_runner(runner: TrialRunner) -> bytes:
    """``runner`` as bytes for a child process, or a ``ValueError`` naming what cannot go."""
    if runner.data.datasets is not None:
        raise ValueError(
            "recycle_every: trainings in a child process need array data (numpy, pandas); "
            "tf.data datasets cannot be sent to another process. Pass arrays, or "
            "recycle_every=None."
        )
    try:
        return pickle.dumps(runner)
    except Exception as exc:  # pickle raises many types (PicklingError, TypeError, Attribute...)
        raise ValueError(
            "recycle_every: build_model, objective and fit_kwargs must be importable by a "
            "fresh process (module-level functions and classes, no lambdas or local "
            f"functions) to train in a child process; pickling failed: {type(exc).__name__}: "
            f"{exc}. Move them to a module, or use recycle_every=None."
        ) from None


class _RemoteHyperParameters:
    """The child's ``hp``: each call of the ``hp`` API is made on the real ``hp`` in the
    parent (lossearch's, or Keras Tuner's own), so values are drawn and recorded there."""

    API = ("Float", "Int", "Choice", "Boolean", "Fixed", "get")

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name: str):
        if name not in self.API:
            raise AttributeError(f"hp has no attribute {name!r}")
        return functools.partial(self._ask, name)

    @property
    def values(self) -> dict:
        return self._ask("values")

    def _ask(self, method: str, *args, **kwargs):
        self._conn.send(("hp", method, args, kwargs))
        ok, value = self._conn.recv()
        if not ok:
            raise value
        return value


class _RemoteReporter:
    """The child's reporter: each epoch's value goes to the parent's, which says prune or not."""

    def __init__(self, conn):
        self.conn = conn

    def report(self, step: int, value: float, logs: dict[str, float]) -> bool:
        self.conn.send(("report", step, value, logs))
        ok, answer = self.conn.recv()
        if not ok:
            raise answer
        return answer


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``RuntimeError`` with its type and text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent goes (kill -9 included), so no
    training outlives its worker."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl: best effort
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve(conn, payload: bytes) -> None:
    """The child's loop: load the runner once, then run trainings until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    try:
        runner = pickle.loads(payload)
    except BaseException as exc:
        conn.send(("broken", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent is gone
            return
        if request is None:
            return
        config, seed, epochs, splits, reports = request
        hp = _RemoteHyperParameters(conn)
        reporter = _RemoteReporter(conn) if reports else None
        try:
            outcome = runner.run(config, hp, reporter, seed, splits=splits, epochs=epochs)
        except Exception as exc:
            exc.add_note(traceback.format_exc(limit=-8))
            conn.send(("raised", _portable(exc)))
        else:
            conn.send(("done", outcome))


class _Child:
    """One training process and its end of the pipe."""

    def __init__(self, payload: bytes):
        self.conn, child_conn = _SPAWN.Pipe()
        self.process = _SPAWN.Process(target=_serve, args=(child_conn, payload), daemon=True)
        self.process.start()
        child_conn.close()  # so a dead child reads as EOF here
        self.trainings = 0
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(STARTUP_SECONDS):
            self.close()
            raise ChildProcessDied(f"the training process did not start in {STARTUP_SECONDS} s")
        kind, detail = self._receive()
        if kind == "broken":
            self.close()
            raise ValueError(
                "recycle_every: a fresh process could not load build_model and the data "
                f"({detail}). Define build_model in an importable module (a script needs "
                "`if __name__ == '__main__':` around its call to optimize), or use "
                "recycle_every=None."
            )
        self.ready = True

    def _receive(self):
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5)
            code = self.process.exitcode
            self.close()
            raise ChildProcessDied(
                f"the training process died (exit code {code}); the next training starts a new one"
            ) from None

    def train(self, request: tuple, hp: HyperParameters, reporter) -> TrialOutcome:
        """Send one training, answer its ``hp`` and report requests, return its outcome."""
        self.wait_ready()
        self.trainings += 1
        self.conn.send(request)
        while True:
            kind, *rest = self._receive()
            if kind == "hp":
                method, args, kwargs = rest
                call = (lambda: dict(hp.values)) if method == "values" else getattr(hp, method)
                self._answer(call, *args, **kwargs)
            elif kind == "report":
                self._answer(reporter.report, *rest)
            elif kind == "raised":
                raise rest[0]
            else:
                return rest[0]

    def _answer(self, call, *args, **kwargs) -> None:
        try:
            self.conn.send((True, call(*args, **kwargs)))
        except Exception as exc:  # e.g. a bad hp range: the child's build_model raises it
            self.conn.send((False, _portable(exc)))

    def close(self, wait: float = 10) -> None:
        """Ask the child to stop; kill it after ``wait`` seconds (0: at once, mid-training)."""
        with contextlib.suppress(OSError, ValueError):  # already closed, or dead
            self.conn.send(None)
        self.process.join(wait)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ChildProcessRunner:
    """A :class:`~lossearch.runner.TrialRunner` whose :meth:`run` trains in a child process,
    replaced after every ``recycle_every`` trainings; each thread (``n_jobs > 1``) has
    its own. Everything else (scoring, refit, the data) is the wrapped runner's.

    Args:
        runner: the in-process runner; it must pickle (see :func:`picklable_runner`).
        recycle_every: trainings per child process.

    Example:
        >>> runner = ChildProcessRunner(runner, recycle_every=25)  # doctest: +SKIP
        >>> runner.start()  # fails here, before any trial, if a child cannot load it
    """

    def __init__(self, runner: TrialRunner, recycle_every: int):
        self.runner, self.recycle_every = runner, recycle_every
        self._payload = picklable_runner(runner)
        self._local = threading.local()
        self._children: list[_Child] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def start(self) -> None:
        """Start this thread's child and wait until it has loaded the runner."""
        self._child().wait_ready()

    def _child(self) -> _Child:
        """This thread's child for the next training. Its successor starts only once it has
        gone: two at once would double the memory this is here to bound."""
        child = getattr(self._local, "child", None)
        if child is None or child.trainings >= self.recycle_every:
            if child is not None:
                self._retire(child)
            child = self._local.child = self._spawn()
        return child

    def _spawn(self) -> _Child:
        child = _Child(self._payload)
        with self._lock:
            self._children.append(child)
        return child

    def _retire(self, child: _Child, wait: float = 10) -> None:
        with self._lock:
            if child in self._children:
                self._children.remove(child)
        child.close(wait)
        self._local.child = None

    def run(
        self,
        config,
        hp: HyperParameters | None = None,
        reporter=None,
        seed: int | None = None,
        keep_model: bool = False,
        splits=None,
        epochs: int | None = None,
    ) -> TrialOutcome:
        """:meth:`TrialRunner.run` in this thread's child process (``keep_model`` trains
        here: a model does not cross processes)."""
        if keep_model:
            return self.runner.run(config, hp, reporter, seed, keep_model, splits, epochs)
        hp = hp if hp is not None else DefaultHyperParameters()
        child = self._child()
        request = (config, seed, epochs, splits, reporter is not None)
        try:
            return child.train(request, hp, reporter)
        except (ChildProcessDied, KeyboardInterrupt):  # dead, or stale mid-training
            self._retire(child, wait=0)
            raise

    def close(self) -> None:
        """Stop every child process."""
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.close()
