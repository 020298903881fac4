"""Performance of lossearch: train-step cost per loss family, per-trial overhead, scoring.

Three parts, each measured side by side in one run (shared machines are noisy, so every figure
is a ratio of medians taken in interleaved rounds), written to BENCHMARKS.md with plots in
benchmarks/results/:

* ``step``: train-step time of a small CNN and an MLP with each loss family against Keras'
  own cross-entropy, with ``jit_compile`` on and off (goal: at most 1.10x).
* ``overhead``: wall time per trial of ``optimize`` against a hand-written Optuna + Keras loop
  of the same model, epochs and losses, with where the difference goes (goal: at most 1.05x).
* ``scoring``: what scoring every epoch costs, against ``fit``'s own validation step with a
  streaming metric (see ``epoch_scoring``). Pruning: ``pruning_benchmark.py``.

Run: make benchmark-performance   (or .venv/bin/python benchmarks/performance_benchmark.py
[--part step|overhead|scoring] [--quick] [--render])
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import epoch_scoring  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import train_step  # noqa: E402
from search_benchmark import build_model, plain_optuna_loop  # noqa: E402
from sections import write_section  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import long_tailed_digits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
JSON_PATH = RESULTS / "performance_benchmark.json"

# -- part 2: per-trial wall time and where the overhead goes ---------------------------------

# Wall-clock timers wrapped around the real functions (nothing is replaced): see _instrument.


class Stopwatch:
    def __init__(self):
        self.seconds = defaultdict(float)
        self.depth = defaultdict(int)

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self.depth[name]:  # re-entrant (a method calling a sibling): count once
                return fn(*args, **kwargs)
            self.depth[name] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.depth[name] -= 1

        return timed


def _instrument(watch: Stopwatch):
    """Wrap the functions of ``SECTIONS``; returns a function that undoes it."""
    import importlib

    from lossearch import tracking

    undo = []

    def patch(owner, attr, name):
        original = getattr(owner, attr)
        setattr(owner, attr, watch.wrap(name, original))
        undo.append((owner, attr, original))

    patch(keras.Model, "fit", "training (model.fit)")
    runner = importlib.import_module("lossearch.runner")
    patch(runner.TrialRunner, "score", "per-epoch scoring")
    patch(runner, "evaluate", "final metrics (scikit-learn)")
    optuna_backend = importlib.import_module("lossearch.backends.optuna")
    patch(optuna_backend._OptunaHooks, "epoch", "pruning reports (Optuna report + should_prune)")
    for attr, value in vars(tracking.Tracker).items():
        if callable(value) and not attr.startswith("__"):
            patch(tracking.Tracker, attr, "MLflow logging")
    patch(keras.backend, "clear_session", "Keras session reset (clear_session)")

    def restore():
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)

    return restore


def _timed(run) -> tuple[float, dict[str, float]]:
    watch = Stopwatch()
    restore = _instrument(watch)
    start = time.perf_counter()
    try:
        run()
    finally:
        restore()
    return time.perf_counter() - start, dict(watch.seconds)


def per_trial_overhead(n_trials: int, epochs: int, batch_size: int, rounds: int) -> dict:
    """hand, lossearch, hand, lossearch, ... in one process; medians per trial."""
    x, y = long_tailed_digits(20, seed=0)
    runs = {"hand": [], "lossearch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):

            def hand():
                plain_optuna_loop(x, y, n_trials, epochs, batch_size, 0)

            def ours(round_=round_):
                lossearch.optimize(
                    build_model,
                    (x, y),
                    space="long_tail",
                    n_trials=n_trials,
                    epochs=epochs,
                    batch_size=batch_size,
                    seed=0,
                    pruner=optuna.pruners.NopPruner(),  # reports every epoch, never prunes
                    cv=None,  # one hold-out model a trial, as the hand loop (auto: 3 folds here)
                    early_stop=False,
                    selection="best",
                    refit=False,
                    show_progress=False,
                    tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                    experiment_name=f"overhead-{round_}",
                )

            for name, run in (("hand", hand), ("lossearch", ours)):
                total, sections = _timed(run)
                runs[name].append(
                    {"total": total / n_trials} | {k: v / n_trials for k, v in sections.items()}
                )
                print(
                    f"  overhead round {round_ + 1}/{rounds}: {name} {total / n_trials:.2f} "
                    "s/trial",
                    flush=True,
                )
    medians = {
        name: {key: statistics.median(r.get(key, 0.0) for r in rows) for key in rows[0] | rows[-1]}
        for name, rows in runs.items()
    }
    ratios = [o["total"] / h["total"] for h, o in zip(runs["hand"], runs["lossearch"], strict=True)]
    return {
        "n_trials": n_trials,
        "epochs": epochs,
        "runs": runs,
        "median": medians,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


# -- plots and report -------------------------------------------------------------------------


def plot_overhead(cost, path: Path):
    """Stacked bars of the top-level sections; "other" is the rest of the wall time."""
    hand, ours = cost["median"]["hand"], cost["median"]["lossearch"]
    parts = [k for k in ours if k not in ("total", *NESTED)]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for i, values in enumerate((hand, ours)):
        left = 0.0
        widths = [values.get(p, 0.0) for p in parts]
        widths.append(values["total"] - sum(widths))
        for j, (part, width) in enumerate(zip([*parts, "other"], widths, strict=True)):
            ax.barh(i, width, left=left, color=f"C{j}", label=part if i == 1 else None)
            left += width
    ax.set_yticks([0, 1], ["hand-written Optuna + Keras", "lossearch.optimize"])
    ax.set_xlabel("seconds per trial (median)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# What the step figures say, written from the runs of 2026-11-23 (the tables above are redrawn
# from their JSON on every run; this reading is not, so refresh it with new measurements).
STEP_VERDICT = (
    "**Reading (2026-11-23).** With the train step compiled, the goal holds on the GPU except "
    "for one family. In the `fused` harness every MLP family is within 1.02× of Keras' loss "
    "except multiclass focal at 1.12× (21.1 vs 18.8 µs per step): its `(1 - p)^γ` needs "
    "`log(1 - p)` without cancellation, which costs reductions of its own over the classes. "
    "Profiling this found the first version at 1.26× (23.3 µs): it took a second log-sum-exp, "
    "an arg-max and a separate log-softmax; `log_softmax_and_log1m` now shares one "
    "`exp(z - max)` between them (the compiled value and gradient of the loss alone went "
    "from 31 XLA fusions to 22, Keras' cross-entropy has 10), and the 2.3 µs left are those "
    "reductions. The fused CNN "
    "timings are bimodal for every loss, Keras' own included (quartiles ≈ 105 to 148 µs), so "
    "their medians say nothing at 10%; their fastest rounds are within 1.07× of Keras'. "
    "Through `model.fit` with `jit_compile=True` on the GPU, where the host's work per step "
    "dominates, every ratio is at most 1.08×. Executed eagerly (PyTorch's default, and JAX or "
    "TensorFlow with `jit_compile=False`), each `keras.ops` call is a dispatch of its own, and "
    "families with more ops pay for them: up to 1.35× (focal) on PyTorch. What remains: "
    "multiclass focal misses the goal by 2% compiled on a GPU, and eager backends miss it "
    "for most families."
)

RESET = "Keras session reset (clear_session)"


def _without(ours: dict, hand: dict, key: str) -> float:
    return (ours["total"] - ours.get(key, 0.0)) / (hand["total"] - hand.get(key, 0.0))


# Sections measured inside model.fit (epoch-end callbacks): shown inside "training".
NESTED = ("per-epoch scoring", "pruning reports (Optuna report + should_prune)")


PARTS = {"step": "train-step time", "overhead": "wall time per trial", "scoring": "scoring"}


def _measured(saved: dict) -> str:
    """When and where each part was measured: one sentence per run that measured some."""
    runs: dict[tuple, list[str]] = {}  # the same run's meta -> the parts it measured
    for part, meta in saved["measured"].items():
        runs.setdefault(tuple(sorted(meta.items())), []).append(PARTS[part])
    sentences = []
    for key, parts in runs.items():
        meta = dict(key)
        which = "" if len(runs) == 1 else f" ({', '.join(parts)})"
        sentences.append(
            f"Measured{which} {meta['date']} with `make benchmark-performance` "
            f"(`benchmarks/performance_benchmark.py{meta['flags']}`) on {meta['machine']}."
        )
    return " ".join(sentences)


def summarize(saved: dict) -> str:
    """Each part's headline ratio, with when and where it was measured."""
    lines = [f"{_measured(saved)} Ratios of medians in interleaved rounds of one run.", ""]
    if "step" in saved:
        lines.append(
            f"- Train step against Keras' own loss, this CPU: {train_step.summary(saved['step'])}"
        )
        for path in sorted(RESULTS.glob("train_step_*.json")):
            other = json.loads(path.read_text())
            lines.append(
                f"- Train step, {other['device'].split(' (')[0]}, {other['backend']} "
                f"(`{other.get('harness', 'fit')}`): {train_step.summary(other)}"
            )
    if "overhead" in saved:
        cost = saved["overhead"]
        rounds = ", ".join(f"{r:.3f}" for r in cost["ratios"])
        lines.append(
            f"- Wall time per trial, `optimize` / a hand-written Optuna + Keras loop: "
            f"**{cost['ratio']:.3f}×** (rounds {rounds}; goal ≤ 1.05×)."
        )
    if "scoring" in saved:
        ratios = ", ".join(
            f"{r['problem']} {r['seconds']['fit validation'] / r['seconds']['callback']:.2f}×"
            for r in saved["scoring"]["rows"]
        )
        lines.append(f"- `fit`'s own validation step / lossearch's epoch-end scoring: {ratios}.")
    return "\n".join(lines)


def render(saved: dict) -> str:
    lines = [
        "## Performance",
        "",
        f"{_measured(saved)} "
        "Every figure is a ratio of medians taken in interleaved rounds inside one run.",
        "",
    ]
    if "step" in saved:
        step = saved["step"]
        lines += [
            "### Train-step time per loss family",
            "",
            "Each loss family against Keras' own `SparseCategoricalCrossentropy(from_logits=True)` "
            "(binary: `BinaryCrossentropy`) on the same model, backend and `jit_compile`, Adam; "
            "the ratio is the median step time over the median of Keras' loss. MLP: 64 inputs, "
            "64 hidden, 10 outputs; CNN: 8×8×1 digits, two 3×3 convolutions (16, 32), max-pool, "
            "dense. Focal uses γ = 2. Goal: ≤ 1.10×. Measured by `benchmarks/train_step.py`, "
            "here and on a lent GPU.",
            "",
            "#### This machine (TensorFlow, CPU)",
            "",
            train_step.describe(step),
            "",
            "![train-step ratios](train_step_ratio.png)",
            "",
            *train_step.table(step),
            "",
            train_step.summary(step) + " Timings on this shared 2-core machine cluster at a few "
            "fixed values whatever the loss, so a 10% difference cannot be resolved here; the "
            "GPU figures below can.",
            "",
        ]
        for path in sorted(RESULTS.glob("train_step_*.json")):
            other = json.loads(path.read_text())
            lines += [
                f"#### {other['device'].split(' (')[0]}: Keras on {other['backend']}, "
                f"harness `{other.get('harness', 'fit')}`",
                "",
                train_step.describe(other),
                "",
                f"![{path.stem}]({path.stem}.png)",
                "",
                *train_step.table(other),
                "",
                train_step.summary(other),
                "",
            ]
        lines += [STEP_VERDICT, ""]
    if "overhead" in saved:
        cost = saved["overhead"]
        hand, ours = cost["median"]["hand"], cost["median"]["lossearch"]
        lines += [
            "### Wall time per trial: `optimize` vs a hand-written loop",
            "",
            f"Long-tailed digits (imbalance 20), the same MLP, {cost['epochs']} epochs, "
            f"{cost['n_trials']} trials per search, {len(cost['ratios'])} rounds of hand, "
            "lossearch. The hand-written loop is Optuna (TPE) + Keras with the same losses, one "
            "validation predict per trial, `clear_session()` per model. `optimize` runs its "
            "defaults with a pruner that never prunes (so every epoch is still scored and "
            'reported), MLflow on a local SQLite store, `selection="best"`, no refit, and, '
            "so that a trial trains one model as the hand loop's does, one 20% hold-out "
            '(`cv=None`; `cv="auto"` takes 3 folds on this data) and no early stop. '
            "Sections are timed by wall-clock wrappers around the real functions; scoring and "
            "pruning reports run inside `model.fit` (epoch-end callback) and are part of its "
            "time.",
            "",
            "![per-trial time](trial_overhead.png)",
            "",
            "| seconds per trial (median) | hand-written | lossearch | difference |",
            "|---|---|---|---|",
        ]
        keys = ["total", *[k for k in ours if k != "total"]]
        for key in keys:
            h, o = hand.get(key, 0.0), ours.get(key, 0.0)
            label = f"  of which {key}" if key in NESTED else key
            lines.append(f"| {label} | {h:.3f} | {o:.3f} | {o - h:+.3f} |")
        lines += [
            "",
            f"**Ratio (median of rounds): {cost['ratio']:.3f}×** "
            f"(rounds: {', '.join(f'{r:.3f}' for r in cost['ratios'])}). Goal: ≤ 1.05×.",
            "",
            f"Leaving the session reset out of both loops: {_without(ours, hand, RESET):.3f}×. "
            "`optimize` resets the Keras session without a full garbage collection (one in "
            "ten resets collects), which the hand-written loop's plain `clear_session()` does "
            "every time. Its `model.fit` is shorter too: the optimizer is built before the "
            "first trace (one trace of the train step, not two) and arrays get "
            "`steps_per_epoch` (one input pipeline an epoch, not two), with the same losses "
            "(tests/test_runner.py). What it adds is MLflow logging and per-epoch scoring.",
            "",
        ]
    if "scoring" in saved:
        lines += epoch_scoring.render(saved["scoring"])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["step", "overhead", "scoring", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    saved.pop("pruning", None)  # measured by pruning_benchmark.py since 2026-12-01
    if not args.render:
        import tensorflow as tf

        from lossearch import limit_threads

        limit_threads(1)  # ratios need a quiet core more than they need speed
        # ...but a second inter-op thread, or tf.data's producer and the train loop take turns
        # on one and small steps time the scheduler (seen: equal times for different losses).
        tf.config.threading.set_inter_op_parallelism_threads(2)
        meta = {
            "date": time.strftime("%Y-%m-%d"),
            "flags": (" --quick" if args.quick else "")
            + ("" if args.part == "all" else f" --part {args.part}"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only, "
            "one intra-op thread, "
            f"Python {platform.python_version()}, TensorFlow/Keras {keras.__version__}, "
            f"Optuna {optuna.__version__}",
        }
        parts = list(PARTS) if args.part == "all" else [args.part]
        saved["measured"] = {**saved.get("measured", {}), **dict.fromkeys(parts, meta)}
        if "step" in parts:
            rounds, scale = (3, 0.3) if args.quick else (9, 1.0)
            saved["step"] = train_step.run(rounds, scale, threads="one intra-op thread")
        if "overhead" in parts:
            saved["overhead"] = per_trial_overhead(
                6 if args.quick else 12, 5 if args.quick else 15, 32, 2 if args.quick else 3
            )
        if "scoring" in parts:
            saved["scoring"] = epoch_scoring.run(3 if args.quick else 5, 20, args.quick)
        JSON_PATH.write_text(json.dumps(saved, indent=1))
    if "step" in saved:
        train_step.plot(saved["step"], RESULTS / "train_step_ratio.png", "TensorFlow, CPU: ")
        for path in sorted(RESULTS.glob("train_step_*.json")):
            other = json.loads(path.read_text())
            title = f"{other['device'].split(' (')[0]}, {other['backend']} ({other['harness']}): "
            train_step.plot(other, path.with_suffix(".png"), title)
    if "overhead" in saved:
        plot_overhead(saved["overhead"], RESULTS / "trial_overhead.png")
    write_section("performance", render(saved), summarize(saved))
    print(summarize(saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
