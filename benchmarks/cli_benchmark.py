"""How fast the ``lossearch`` command answers, and how long ``make demo`` takes on a fresh clone.

Help, ``--version``, ``spaces`` and argument errors answer without TensorFlow. Each command
runs ``--rounds`` times, interleaved, in a fresh process; the figure is the median wall time.
``--demo`` also clones the repository into a temporary folder and times ``make demo`` there
(the runtime virtualenv's install included; pip's download cache is kept, as on a user's
machine that has installed Python packages before). Written to the ``cli`` section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from efficacy import ROOT, commit  # noqa: E402  (one reading of the commit, dirty marked)
from sections import machine, publish  # noqa: E402

SAVED = ROOT / "benchmarks" / "results" / "cli_benchmark.json"
GOAL = 1.0  # seconds: every answer that needs no training

# (arguments, the exit status expected): an argument error must fail, and fail fast
COMMANDS = [
    (["--help"], 0),
    (["--version"], 0),
    (["demo", "--help"], 0),
    (["optimize", "--help"], 0),
    (["worker", "--help"], 0),
    (["export", "--help"], 0),
    (["report", "--help"], 0),
    (["sync-mlflow", "--help"], 0),
    (["spaces"], 0),
    (["optimize"], 2),  # --data missing
    (["optimize", "--data", "demo", "--n-trials", "0"], 2),
    (["optimize", "--data", "demo", "--backend", "ray"], 2),
    (["demo", "--epochs", "-3"], 2),
    # errors about the data, its target column, the space, the objective, the storage
    (["optimize", "--data", "missing.csv", "--target", "y"], 2),
    (["optimize", "--data", "{folder}/pets.csv", "--target", "nope"], 2),
    (["optimize", "--data", "{folder}/pets.csv", "--target", "y", "--space", "nope"], 2),
    (["optimize", "--data", "{folder}/pets.csv", "--target", "y", "--objective", "nope"], 2),
    (["export", "--storage", "sqlite:///{folder}/missing/s.db", "--study", "s"], 2),
    # what reads a stored study: no training, so no TensorFlow either
    (["export", "--storage", "{storage}", "--study", "s", "-o", "{folder}/best.json"], 0),
    (["report", "--storage", "{storage}", "--study", "s", "-o", "{folder}/report.html"], 0),
    (["repair", "--storage", "journal:///{folder}/journal.log"], 0),
]


def lossearch_command() -> list[str]:
    found = shutil.which("lossearch", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "lossearch.cli"]


def stored_study(folder: Path) -> dict[str, str]:
    """A data file, a finished two-trial search and an Optuna journal in ``folder``, for the
    commands that read them (made once, not timed)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (rng.random(120) < 0.2).astype(int)
    rows = ["a,b,c,y"] + [
        f"{r[0]:.3f},{r[1]:.3f},{r[2]:.3f},{t}" for r, t in zip(x, y, strict=True)
    ]
    (folder / "pets.csv").write_text("\n".join(rows) + "\n")
    storage = f"sqlite:///{folder}/study.db"
    subprocess.run(
        [*lossearch_command(), "demo", "--trials", "2", "--epochs", "1", "--no-progress"]
        + ["--storage", storage, "--study", "s", "--tracking-uri", f"sqlite:///{folder}/m.db"]
        + ["-o", str(folder / "demo.json")],
        env=_ENV,
        cwd=folder,
        check=True,
        capture_output=True,
    )
    import optuna
    from optuna.storages.journal import JournalFileBackend

    backend = JournalFileBackend(str(folder / "journal.log"))
    optuna.create_study(storage=optuna.storages.JournalStorage(backend), study_name="j")
    return {"folder": str(folder), "storage": storage}


_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def measure(rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {" ".join(c): [] for c, _ in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        where = stored_study(Path(tmp))
        for _ in range(rounds):
            for command, status in COMMANDS:
                _time(command, status, where, times[" ".join(command)])
    return {name: statistics.median(values) for name, values in times.items()}


def _time(command: list[str], status: int, where: dict, times: list[float]) -> None:
    argv = [part.format(**where) for part in command]
    start = time.perf_counter()
    done = subprocess.run(
        [*lossearch_command(), *argv], env=_ENV, capture_output=True, cwd=where["folder"]
    )
    times.append(time.perf_counter() - start)
    if done.returncode != status:
        raise SystemExit(
            f"lossearch {' '.join(argv)} exited {done.returncode}, "
            f"expected {status}:\n{done.stderr.decode()[-2000:]}"
        )


def time_demo() -> float:
    """Seconds of ``make demo`` in a fresh clone of this repository's HEAD."""
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "lossearch"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        start = time.perf_counter()
        subprocess.run(["make", "demo"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def summarize(saved: dict) -> str:
    medians = saved["medians"]
    slowest = max(medians, key=medians.get)
    over = {name: value for name, value in medians.items() if value > GOAL}
    lines = [
        f"Measured {saved['date']} on commit {saved['commit']} (`benchmarks/cli_benchmark.py`): "
        f"{len(medians)} commands that need no training, each in a fresh process, median of "
        f"{saved['rounds']} interleaved rounds; no interval.",
        "",
        f"- Every one within {GOAL:g} s: **{'met' if not over else 'missed'}**; slowest "
        f"`lossearch {slowest}` at {medians[slowest]:.2f} s"
        + (
            f"; {len(over)} over: "
            + ", ".join(f"`{name.split(' --')[0]}` {value:.2f} s" for name, value in over.items())
            if over
            else ""
        )
        + ".",
    ]
    if saved.get("demo") is not None:
        lines.append(
            f"- `make demo` on a fresh clone (install from pip's cache, then the search): "
            f"{saved['demo']:.0f} s (goal ≤ 3 minutes: "
            f"**{'met' if saved['demo'] <= 180 else 'missed'}**)."
        )
    return "\n".join(lines)


def render(saved: dict) -> str:
    medians = saved["medians"]
    rows = "\n".join(f"| `lossearch {name}` | {value:.2f} s |" for name, value in medians.items())
    slowest = max(medians.values())
    goal = "met" if slowest <= GOAL else f"missed by {slowest - GOAL:.2f} s"
    demo, demo_line = saved.get("demo"), ""
    if demo is not None:
        verdict = "met" if demo <= 180 else f"missed by {demo - 180:.0f} s"
        demo_line = (
            f"\n`make demo` on a fresh clone (runtime virtualenv installed from pip's "
            f"cache, then the demo search): {demo:.0f} s. Goal ≤ 3 minutes: "
            f"**{verdict}**.\n"
        )
    return f"""## Command line: time to answer

Measured {saved["date"]} with `benchmarks/cli_benchmark.py` on commit `{saved["commit"]}`,
{saved["machine"]}: each command in a fresh process, median of {saved["rounds"]} interleaved
rounds. Help, `--version`, `spaces`, errors about the
arguments, the data file, the space, the objective or the storage (exit status 2), and the
commands that read a stored study (`export`, `report`, `repair`) need no training and answer
without importing TensorFlow (`{{folder}}` and `{{storage}}`: a data file and a finished
two-trial demo search made before the timing). Goal: every one of them within a second:
**{goal}** (slowest {slowest:.2f} s).
{demo_line}
| command | median wall time |
|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--demo", action="store_true", help="also time make demo on a clone")
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args()
    if not args.render:
        medians = measure(args.rounds)
        saved = {
            "date": time.strftime("%Y-%m-%d"),
            "commit": commit(),
            "machine": machine(),
            "rounds": args.rounds,
            "medians": medians,
            "demo": time_demo() if args.demo else None,
        }
        SAVED.write_text(json.dumps(saved, indent=1))
    publish("cli", SAVED, render, summarize)


if __name__ == "__main__":
    main()
