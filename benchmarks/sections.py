"""BENCHMARKS.md is written by several scripts; each owns one marked section of it.

Each section there is a summary (every figure with its date, commit and interval); the whole
of it, tables and method, lies in ``benchmarks/results/<section>.md``, written by the same
call. Smoke runs (``SMOKE``) write only their detail file.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "BENCHMARKS.md"
RESULTS = Path(__file__).parent / "results"
SMOKE = ("efficacy-quick",)
HEADER = """# Benchmarks

What lossearch measured, each figure with its date, the commit it ran on and its interval.
The method, the tables and every problem lie in the section's detail file beside the script
that writes both (`benchmarks/results/<section>.md`); `make benchmark`,
`make benchmark-performance`, `make benchmark-efficacy` and `make benchmark-images` run them.
Intervals are 95% and clustered on the base problem unless a line says otherwise; a goal is
met only when the whole interval clears it."""
ORDER = (
    "search",
    "efficacy",
    "selection-replay",
    "incumbent-replay",
    "performance",
    "pruning",
    "time-to-pick",
    "whole-budget",
    "image-searches",
    "pruner-replay",
    "scaleout",
    "memory",
    "cli",
)  # the sections' order in the file


def git(*args: str) -> str:
    """``git ARGS`` in this repository: its standard output ('' when git fails)."""
    done = subprocess.run(["git", *args], cwd=BENCHMARKS.parent, capture_output=True, text=True)
    return done.stdout


def machine(detail: str = "") -> str:
    """The machine as the sections name it: ``x86_64, 2 cores, CPU only, [detail, ]Python 3.11``."""
    detail = f"{detail}, " if detail else ""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, CPU only, {detail}"
        f"Python {platform.python_version()}"
    )


def results_stamp(path: Path) -> str:
    """For figures saved without their date and code's commit: when they were committed,
    ``"2026-12-01, results committed in abc1234"``."""
    found = git("log", "-1", "--format=%cs %h", "--", str(path)).split()
    return f"{found[0]}, results committed in {found[1]}" if found else "not committed yet"


def committed_in(path: Path) -> str:
    """The commit that last changed ``path`` (``"uncommitted"`` before the first)."""
    return git("log", "-1", "--format=%h", "--", str(path)).strip() or "uncommitted"


def detail_path(name: str) -> Path:
    return RESULTS / f"{name}.md"


def write_section(name: str, detail: str, summary: str, path: Path = BENCHMARKS) -> None:
    """Write section ``name``: ``detail`` whole to its results file, and into BENCHMARKS.md
    (between its markers, the other sections kept) its title, ``summary`` and a link."""
    detail_path(name).write_text(detail.strip() + "\n")
    if name in SMOKE:
        return
    title = next(line for line in detail.splitlines() if line.startswith("## "))
    link = f"Detail: [{detail_path(name).relative_to(path.parent)}]"
    link += f"({detail_path(name).relative_to(path.parent)})."
    sections = _read(path)
    sections[name] = f"{title}\n\n{summary.strip()}\n\n{link}"
    names = [n for n in ORDER if n in sections] + [n for n in sections if n not in ORDER]
    body = "\n\n".join(f"<!-- {n}:start -->\n{sections[n]}\n<!-- {n}:end -->" for n in names)
    path.write_text(f"{HEADER}\n\n{body}\n")


def publish(name: str, saved: Path, render: Callable[[dict], str], summarize) -> str:
    """Render the figures saved as JSON at ``saved`` into section ``name`` (``summarize``
    gives its summary from the same figures); print the summary."""
    figures = json.loads(saved.read_text())
    summary = summarize(figures)
    write_section(name, render(figures), summary)
    print(summary)
    return summary


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    text = path.read_text()
    if "<!-- " not in text:  # written before sections existed: all of it is the search part
        return {"search": text.strip()}
    sections = {}
    for chunk in text.split("<!-- ")[1:]:
        if chunk.startswith(SMOKE):
            continue
        marker, _, rest = chunk.partition(" -->\n")
        if marker.endswith(":start"):
            sections[marker[: -len(":start")]] = rest.rstrip()
    return sections
