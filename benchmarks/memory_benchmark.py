"""Memory over a long search, with and without recycled training processes.

One ``optimize`` of ``--trials`` trials (2 epochs each, the ``long_tail`` space, the
digits MLP of the scale-out tests, SQLite storage, an MLflow store) per mode, each in
a fresh process: trainings in the search's own process (``recycle_every=None``, the
``optimize`` default) and in child processes replaced every N trainings
(``recycle_every=N``; N=25 is the worker's default). After every trial an Optuna
callback reads the RSS of the search's process and of its training children from
``/proc``; the table gives it after 10, 100 and 1000 trainings. A random sampler
keeps the 1000-trial searches about memory (TPE's per-trial cost grows with the trials).

Run: .venv/bin/python benchmarks/memory_benchmark.py [--trials 1000] [--recycle 25]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAVED = RESULTS / "memory_benchmark.json"
sys.path.insert(0, str(ROOT))

from sections import committed_in, machine, publish  # noqa: E402  (benchmarks/sections.py)

EPOCHS = 2
CHECKPOINTS = (10, 100, 1000)


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(row for row in status if row.startswith("VmRSS:"))
    except (FileNotFoundError, StopIteration):  # gone, or a zombie
        return 0.0
    return int(line.split()[1]) / 1024


def children_of(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def search_child(trials: int, recycle: int, folder: str) -> dict:
    """Runs in a fresh process: one search, RSS after each trial (this process, children)."""
    import optuna

    import lossearch
    from tests.scaleout_model import build_model, load_data

    samples = []
    start = time.perf_counter()

    def record(study, trial):
        kids = sum(rss_mb(pid) for pid in children_of(os.getpid()))
        samples.append([rss_mb(), kids, time.perf_counter() - start])

    lossearch.optimize(
        build_model,
        load_data(),
        space="long_tail",
        n_trials=trials,
        epochs=EPOCHS,
        batch_size=64,
        cv=None,
        storage=f"sqlite:///{folder}/memory-{recycle}.db",
        study_name="memory",
        tracking_uri=f"sqlite:///{folder}/mlflow-{recycle}.db",
        experiment_name="memory",
        sampler=optuna.samplers.RandomSampler(seed=0),
        selection="best",
        refit=False,
        show_progress=False,
        seed=0,
        recycle_every=recycle or None,
        callbacks=[record],
    )
    return {"trials": trials, "recycle_every": recycle, "samples": samples}


def run_mode(trials: int, recycle: int, folder: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(trials), str(recycle), folder],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(run: dict) -> str:
    samples = run["samples"]
    label = (
        f"child processes, `recycle_every={run['recycle_every']}`"
        if run["recycle_every"]
        else "this process (`recycle_every=None`)"
    )
    points = [k for k in CHECKPOINTS if k <= len(samples)]
    cells = []
    for k in points:
        parent, kids, _ = samples[k - 1]
        cells.append(f"{parent + kids:.0f} ({parent:.0f} + {kids:.0f})")
    seconds = samples[-1][2] / len(samples)
    return f"| {label} | {' | '.join(cells)} | **{_ratio(run):.2f}×** | {seconds:.2f} s |"


def _ratio(run: dict) -> float:
    first = run["samples"][CHECKPOINTS[0] - 1]
    last = run["samples"][-1]
    return (last[0] + last[1]) / (first[0] + first[1])


def summarize(result: dict) -> str:
    base, *recycled = result["runs"]
    lines = [
        f"Measured {result['date']} (results committed in {committed_in(SAVED)}; "
        "`benchmarks/memory_benchmark.py`): one `optimize` of "
        f"{result['trials']} trials per row, RSS of the search and its training children; "
        "one run per row, no interval.",
        "",
        f"- Trainings in the search's process: RSS after the last training {_ratio(base):.2f}× "
        "that after the first ten.",
    ]
    lines += [
        f"- `recycle_every={run['recycle_every']}` (trainings in a child process replaced "
        f"every {run['recycle_every']}): {_ratio(run):.2f}× (goal ≤ 1.1×: "
        f"**{'met' if _ratio(run) <= 1.1 else 'missed'}**)."
        for run in recycled
    ]
    return "\n".join(lines)


def render(result: dict) -> str:
    runs = result["runs"]
    points = [k for k in CHECKPOINTS if k <= result["trials"]]
    base, *recycled = runs
    lines = [
        "## Memory over a long search: recycled training processes",
        "",
        f"Measured {result['date']} with `benchmarks/memory_benchmark.py` on {result['machine']}.",
        "",
        f"One `optimize` of {result['trials']} trials ({EPOCHS} epochs each, `long_tail` space, "
        "the digits MLP, SQLite storage, an MLflow store, a random sampler) per row, each in a "
        "fresh process. RSS after the k-th training is read by an Optuna callback from "
        "`/proc`: the search's process plus its training children (MiB, search + children).",
        "",
        "| trainings in | "
        + " | ".join(f"after {k}" for k in points)
        + f" | {points[-1]} / {points[0]} | seconds per trial |",
        "|---|" + "---|" * len(points) + "---|---|",
        *(_row(run) for run in runs),
        "",
    ]
    base_s = base["samples"][-1][2] / len(base["samples"])
    for run in recycled:
        s = run["samples"][-1][2] / len(run["samples"])
        first = run["samples"][points[0] - 1]
        ratio = (run["samples"][-1][0] + run["samples"][-1][1]) / (first[0] + first[1])
        lines.append(
            f"`recycle_every={run['recycle_every']}`: {ratio:.2f}× after "
            f"{len(run['samples'])} trainings against {_ratio(base):.2f}× in process (goal "
            f"≤ 1.1×: **{'met' if ratio <= 1.1 else 'missed'}**). The price is a second "
            f"TensorFlow process ({first[1]:.0f} MiB beside the search's {first[0]:.0f}), "
            "and a replacement every "
            f"{run['recycle_every']} trainings (TensorFlow imported, the data loaded again); "
            f"time per trial {s:.2f} s against {base_s:.2f} s in process ({s / base_s:.2f}×). "
            "The rows ran one after the other, each beside other work on the 2 cores, so the "
            "time ratio is rough; the in-process search also slows as it grows."
        )
    lines += [
        "",
        "The worker "
        "(`lossearch worker`) recycles every 25 trainings by default (`--recycle-every`), "
        "`optimize` only when asked (`recycle_every=`): a notebook's model is rarely "
        "importable by a fresh process.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--recycle", type=int, nargs="+", default=[25])
    parser.add_argument("--render", action="store_true", help="rewrite from the last JSON")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        trials, recycle, folder = args.child
        print(json.dumps(search_child(int(trials), int(recycle), folder)))
        return 0
    saved = SAVED
    if not args.render:
        with tempfile.TemporaryDirectory() as folder:
            runs = [run_mode(args.trials, r, folder) for r in (0, *args.recycle)]
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "trials": args.trials,
            "machine": machine(),
            "runs": runs,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(result, indent=2))
    publish("memory", saved, render, summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
