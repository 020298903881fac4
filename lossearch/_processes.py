"""Which process runs a trial, and whether that process is gone.

A worker killed mid-trial (SIGKILL, a lost machine) leaves its trial RUNNING. Across hosts
only the heartbeat tells, after its grace period (120 s by default). On the host the worker
ran on, its process id tells at once: a rerun there fails the trial and queues it again
without waiting. The process's start time is kept with its id, so that a recycled id does
not pass for the dead worker.

A bottom-floor module (standard library only).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_process() -> dict:
    """``{"host", "pid", "start"}`` of this process (``start`` None off Linux)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_ticks(os.getpid())}


def is_gone(process: object) -> bool:
    """Whether ``process`` (as :func:`this_process` recorded it) ran on this host and has
    ended. False where that cannot be told: another host, or nothing recorded."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    if not Path("/proc/self/stat").exists():  # no /proc: whether the id is taken
        return not _exists(pid)
    start = _start_ticks(pid)
    return start is None or (process.get("start") is not None and start != process["start"])


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (Linux's /proc); None when it does not
    exist, has exited (a zombie) or this is no Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":  # exited, not reaped yet
        return None
    return int(fields[19])  # field 22 of stat, counted after the name
