"""BENCHMARKS.md is written by several scripts; each owns one marked section of it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "BENCHMARKS.md"
ORDER = (
    "search",
    "efficacy",
    "efficacy-quick",
    "selection-replay",
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


def write_section(name: str, text: str, path: Path = BENCHMARKS) -> None:
    """Replace section ``name`` (between its markers) and keep the others as they are."""
    sections = _read(path)
    sections[name] = text.strip()
    names = [n for n in ORDER if n in sections] + [n for n in sections if n not in ORDER]
    body = "\n\n".join(f"<!-- {n}:start -->\n{sections[n]}\n<!-- {n}:end -->" for n in names)
    path.write_text(body + "\n")


def publish(name: str, saved: Path, render: Callable[[dict], str]) -> str:
    """Render the figures saved as JSON at ``saved`` into section ``name``; print the text."""
    text = render(json.loads(saved.read_text()))
    write_section(name, text)
    print(text)
    return text


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    text = path.read_text()
    if "<!-- " not in text:  # written before sections existed: all of it is the search part
        return {"search": text.strip()}
    sections = {}
    for chunk in text.split("<!-- ")[1:]:
        marker, _, rest = chunk.partition(" -->\n")
        if marker.endswith(":start"):
            sections[marker[: -len(":start")]] = rest.rstrip()
    return sections
