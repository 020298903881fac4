"""How fast the ``lossearch`` command answers: help without TensorFlow, a command with it.

Each command runs ``--rounds`` times, interleaved, in a fresh process; the figure is the
median wall time. Written to the ``cli`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sections import write_section  # noqa: E402

COMMANDS = [
    ["--help"],
    ["demo", "--help"],
    ["optimize", "--help"],
    ["worker", "--help"],
    ["export", "--help"],
    ["report", "--help"],
    ["sync-mlflow", "--help"],
    ["spaces"],  # a command that needs the loss layer: TensorFlow is imported
]


def lossearch_command() -> list[str]:
    found = shutil.which("lossearch", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "lossearch.cli"]


def measure(rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {" ".join(c): [] for c in COMMANDS}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _ in range(rounds):
        for command in COMMANDS:
            start = time.perf_counter()
            subprocess.run(
                [*lossearch_command(), *command], env=env, capture_output=True, check=True
            )
            times[" ".join(command)].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def render(medians: dict[str, float], rounds: int) -> str:
    rows = "\n".join(f"| `lossearch {name}` | {value:.2f} s |" for name, value in medians.items())
    helps = [v for k, v in medians.items() if "help" in k]
    goal = "met" if max(helps) < 1.0 else f"missed by {max(helps) - 1.0:.2f} s"
    return f"""## Command line: time to answer

`benchmarks/cli_benchmark.py`: each command in a fresh process, median of {rounds} interleaved
rounds, on this machine. Help answers without importing TensorFlow; `spaces` imports it.
Goal: every help under a second: **{goal}** (slowest help {max(helps):.2f} s).

| command | median wall time |
|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    medians = measure(args.rounds)
    text = render(medians, args.rounds)
    print(text)
    write_section("cli", text)


if __name__ == "__main__":
    main()
