"""Writing lossearch's outputs: whole or not at all, and never over one of their inputs.

A bottom-floor module (standard library only), used wherever lossearch writes a file the
user named: the loss JSON, the HTML report.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path


def write_text(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file in the same folder, renamed into
    place once complete: a failed write (a full disk, Ctrl-C) leaves the old file as it was,
    never half of a new one. The file gets the mode ``open()`` would give it: the umask's
    for a new file, the old file's own when replacing one (a read-only file is refused). A
    device (``/dev/null``) is written to directly. Returns the path."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{os.fspath(path)!r} is a folder; name a file to write.")
    if target.exists() and not target.is_file():  # a device (/dev/null): written through,
        with open(target, "w", encoding="utf-8") as handle:  # never replaced by a rename
            handle.write(text)
        return os.fspath(path)
    mode = output_mode(target, path)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        os.fchmod(descriptor, mode)  # mkstemp's 0600 is for its own secrecy, not the output's
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return os.fspath(path)


def output_mode(target: Path, shown: str | os.PathLike | None = None) -> int:
    """The mode a written file gets: an existing file's own (a read-only one is refused, not
    replaced), else what the umask leaves of 0666, as ``open()`` would create it."""
    if target.is_file():
        mode = stat.S_IMODE(target.stat().st_mode)
        # no write bit: read-only even to root, whom os.access lets write anything
        if not (mode & 0o222 and os.access(target, os.W_OK)):
            raise ValueError(
                f"{os.fspath(shown or target)!r} is read-only; lossearch does not replace "
                "it. Make it writable, or name another file."
            )
        return mode
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (another thread
    may be creating files meanwhile), else set and restored at once."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_inputs(option: str, output: str | os.PathLike, inputs: Mapping[str, object]) -> None:
    """Raise ``ValueError`` when ``output`` is one of the command's ``inputs``
    (``{"the storage": path, "the space file": path, ...}``; ``None`` paths are skipped)."""
    target = Path(output)
    for what, path in inputs.items():
        if path is not None and _same_file(target, Path(path)):
            raise ValueError(
                f"{option}: {os.fspath(output)!r} is {what} of this command; writing there would "
                "destroy it. Name another file."
            )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)
