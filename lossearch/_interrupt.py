"""Ctrl-C stops a search, whatever it interrupts.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside
TensorFlow's C++ (a ``fit`` step, a tensor conversion) that exception can come back out as
another one ("SystemError: ... bad argument to internal function", "TypeError: Failed to
convert elements of (None,) to Tensor"), which a search records as a failed trial and then
goes on. So while a search runs, SIGINT also sets a flag: a trial that fails while it is set
was interrupted, and the runner (after each batch) and the driver (before each trial) raise
``KeyboardInterrupt`` once they see it.

A bottom-floor module (standard library only).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested = threading.Event()


def requested() -> bool:
    """Whether Ctrl-C (SIGINT) arrived while a search was watching for it."""
    return _requested.is_set()


def raise_if_requested() -> None:
    """Raise ``KeyboardInterrupt`` when Ctrl-C arrived: between batches, epochs, trials."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """SIGINT sets the flag, then does what it did before (Python's default: raise
    ``KeyboardInterrupt`` here). Off the main thread, where no handler can be set, or with
    SIGINT ignored or left to the system (``SIG_DFL`` ends the process), nothing changes.
    The flag is cleared on entry: an earlier, handled Ctrl-C does not stop this search."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    _requested.clear()

    def handler(signum, frame):
        _requested.set()
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
