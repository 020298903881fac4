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
from sections import write_section  # noqa: E402

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
]


def lossearch_command() -> list[str]:
    found = shutil.which("lossearch", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "lossearch.cli"]


def measure(rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {" ".join(c): [] for c, _ in COMMANDS}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _ in range(rounds):
        for command, status in COMMANDS:
            start = time.perf_counter()
            done = subprocess.run([*lossearch_command(), *command], env=env, capture_output=True)
            times[" ".join(command)].append(time.perf_counter() - start)
            if done.returncode != status:
                raise SystemExit(
                    f"lossearch {' '.join(command)} exited {done.returncode}, "
                    f"expected {status}:\n{done.stderr.decode()[-2000:]}"
                )
    return {name: statistics.median(values) for name, values in times.items()}


def time_demo() -> float:
    """Seconds of ``make demo`` in a fresh clone of this repository's HEAD."""
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "lossearch"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        start = time.perf_counter()
        subprocess.run(["make", "demo"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def render(medians: dict[str, float], rounds: int, demo: float | None) -> str:
    rows = "\n".join(f"| `lossearch {name}` | {value:.2f} s |" for name, value in medians.items())
    slowest = max(medians.values())
    goal = "met" if slowest <= 1.0 else f"missed by {slowest - 1.0:.2f} s"
    demo_line = ""
    if demo is not None:
        verdict = "met" if demo <= 180 else f"missed by {demo - 180:.0f} s"
        demo_line = (
            f"\n`make demo` on a fresh clone (runtime virtualenv installed from pip's "
            f"cache, then the demo search): {demo:.0f} s. Goal ≤ 3 minutes: "
            f"**{verdict}**.\n"
        )
    return f"""## Command line: time to answer

`benchmarks/cli_benchmark.py` on commit `{commit()}`: each command in a fresh process, median of
{rounds} interleaved rounds, on this machine. Help, `--version`, `spaces` and argument errors
(exit status 2) answer without importing TensorFlow. Goal: every one of them within a second:
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
    args = parser.parse_args()
    medians = measure(args.rounds)
    text = render(medians, args.rounds, time_demo() if args.demo else None)
    print(text)
    write_section("cli", text)


if __name__ == "__main__":
    main()
