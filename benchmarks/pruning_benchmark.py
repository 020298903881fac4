"""Which pruner: test quality of the pick against epochs trained, per pruner and per family.

Recording: for each problem and seed (efficacy benchmark's datasets), one unpruned
``optimize`` of ``--trials`` trials (``--epochs`` each, one hold-out split, the task's
bundled space, ``selection="best"``) records every trial's per-epoch validation
objective and, through a Keras callback, its predictions on the held-out test set
(which the search never sees), scored under the trial's own decision rule.

Replay: each pruner then runs over the same trials in the same order on a fresh Optuna
study (ask, report each epoch, stop when it says prune; recipes are never pruned, as
in ``optimize``). A trial the pruner lets finish trained exactly as recorded (same
seed), so the replayed pick (best validation among finished trials) and its test score
are what that pruned search would have picked — except that a live sampler would also
learn from the pruned trials, which the replay leaves out. The unpruned search is the
reference: its pick's test score and its epochs.

Run: .venv/bin/python benchmarks/pruning_benchmark.py [--trials 60] [--epochs 20]
     [--jobs 2] [--replay-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import efficacy_data  # noqa: E402  (benchmarks/efficacy_data.py)
import numpy as np  # noqa: E402
from sections import committed_in, machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAVED = RESULTS / "pruning_benchmark.json"
SHIPPED = "default (lossearch's)"
RECORDINGS = RESULTS / "pruning_recordings.jsonl"
PROBLEMS = (
    ("digits", "multiclass", 50),
    ("segment", "multiclass", 100),
    ("yeast3", "binary", None),
    ("vehicle0", "binary", None),
)
SEEDS = (0, 1)
TEST_METRIC = {"multiclass": "balanced_accuracy", "binary": "pr_auc"}


# -- recording: one unpruned search per problem and seed ----------------------------------


def record(problem: tuple, seed: int, trials: int, epochs: int) -> dict:
    """Runs in its own process (one thread): the unpruned search and every trial's test score."""
    import keras
    import optuna
    from efficacy import SPACE, build_model_for, test_scores

    import lossearch
    from lossearch.study.state import decision_of

    lossearch.limit_threads(1)
    name, task, imbalance = problem
    setting = efficacy_data.load(name, task, imbalance, seed)
    latest: dict = {}

    class TestPredictions(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            latest["outputs"] = keras.ops.convert_to_numpy(self.model(setting.x_test))

    per_trial: dict[int, dict] = {}

    def keep_test_score(study, trial):
        outputs = latest.pop("outputs", None)
        if trial.state.name != "COMPLETE" or "duplicate_of" in trial.user_attrs:
            return
        probs = _probabilities(outputs, task)
        decision = decision_of(trial)
        scored = probs if decision is None else decision.apply(probs)
        per_trial[trial.number] = test_scores(setting, scored, from_logits=False)

    n_out = 1 if task == "binary" else len(setting.counts)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = lossearch.optimize(
            build_model_for(setting.x.shape[1], n_out),
            (setting.x, setting.y),
            space=SPACE[task],
            n_trials=trials,
            epochs=epochs,
            cv=None,
            seed=seed,
            pruner=optuna.pruners.NopPruner(),
            selection="best",
            refit=False,
            show_progress=False,
            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            experiment_name="pruning",
            callbacks=[keep_test_score],
            fit_kwargs={"callbacks": [TestPredictions()]},
        )
    rows = []
    for trial in result.study.get_trials(deepcopy=False):
        if "duplicate_of" in trial.user_attrs:
            continue  # no training: its twin is the measurement
        curve = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        rows.append(
            {
                "number": trial.number,
                "family": trial.user_attrs.get("config", {}).get("family"),
                "recipe": trial.user_attrs.get("recipe"),
                "value": trial.value if trial.state.name == "COMPLETE" else None,
                "curve": curve,
                "test": per_trial.get(trial.number, {}).get(TEST_METRIC[task]),
            }
        )
    return {
        "problem": setting.name,
        "task": task,
        "seed": seed,
        "trials": trials,
        "epochs": epochs,
        "seconds": time.perf_counter() - start,
        "rows": rows,
    }


def _probabilities(outputs, task):
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-outputs.reshape(-1, 1)))
    e = np.exp(outputs - outputs.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def record_all(trials: int, epochs: int, jobs: int) -> list[dict]:
    """Recordings cached in ``RECORDINGS``; only the missing ones are run."""
    done = _recordings(trials, epochs)
    have = {(r["problem"], r["seed"]) for r in done}
    todo = [
        (p, s)
        for p in PROBLEMS
        for s in SEEDS
        if (efficacy_data._label(*p), s) not in have  # noqa: SLF001 - the shared naming
    ]
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(record, p, s, trials, epochs) for p, s in todo]
        for future in futures:
            row = future.result()
            print(f"  recorded {row['problem']} seed {row['seed']}: {row['seconds']:.0f} s")
            RESULTS.mkdir(parents=True, exist_ok=True)
            with RECORDINGS.open("a") as out:
                out.write(json.dumps(row) + "\n")
            done.append(row)
    return done


def _recordings(trials: int, epochs: int) -> list[dict]:
    if not RECORDINGS.exists():
        return []
    rows = [json.loads(line) for line in RECORDINGS.read_text().splitlines() if line]
    return [r for r in rows if r["trials"] == trials and r["epochs"] == epochs]


# -- replay: each pruner over the recorded trials -----------------------------------------


def pruners(epochs: int, n_recipes: int) -> dict:
    """The candidates, each a factory of a fresh pruner."""
    import optuna

    from lossearch.backends.optuna import default_pruner

    p = optuna.pruners
    startup = max(5, n_recipes)
    return {
        "none": p.NopPruner,
        SHIPPED: default_pruner,
        "median, warm-up 1/3 (the former default)": lambda: p.MedianPruner(
            startup, max(1, epochs // 3)
        ),
        "median, warm-up 1/2": lambda: p.MedianPruner(startup, epochs // 2),
        "median, warm-up 1/4": lambda: p.MedianPruner(startup, max(1, epochs // 4)),
        "patient median (2 epochs)": lambda: p.PatientPruner(
            p.MedianPruner(startup, max(1, epochs // 4)), patience=2
        ),
        "successive halving, from 1/10 of the epochs": lambda: p.SuccessiveHalvingPruner(
            min_resource=max(1, epochs // 10)
        ),
        "successive halving, Optuna's defaults": p.SuccessiveHalvingPruner,
        "hyperband": lambda: p.HyperbandPruner(
            min_resource=max(1, epochs // 10), max_resource=epochs
        ),
        "wilcoxon": lambda: p.WilcoxonPruner(p_threshold=0.1, n_startup_steps=epochs // 4),
    }


def replay(recording: dict, make_pruner) -> list[tuple[int, bool]]:
    """``[(epochs trained, finished)]`` per recorded trial under this pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # a fixed name: Hyperband assigns brackets from a hash of the study name and trial number
    study = optuna.create_study(study_name="replay", direction="maximize", pruner=make_pruner())
    out = []
    for row in recording["rows"]:
        trial = study.ask()
        trained, pruned = 0, False
        for step, value in enumerate(row["curve"]):
            trial.report(value, step)
            trained = step + 1
            if row["recipe"] is None and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif row["value"] is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, row["value"])
        out.append((trained, not pruned and row["value"] is not None))
    return out


def _final_pick(recording: dict, outcome) -> dict:
    finished = [
        row
        for row, (_, done) in zip(recording["rows"], outcome, strict=True)
        if done and row["test"] is not None
    ]
    return max(finished, key=lambda r: r["value"])


def _pick_curve(recording: dict, outcome) -> tuple[list[int], list[float | None]]:
    """Cumulative epochs and the test score of the best-validation finished trial so far."""
    total, best, xs, ys = 0, None, [], []
    for row, (trained, finished) in zip(recording["rows"], outcome, strict=True):
        total += trained
        if finished and row["test"] is not None and (best is None or row["value"] > best["value"]):
            best = row
        xs.append(total)
        ys.append(None if best is None else best["test"])
    return xs, ys


def evaluate(recording: dict, outcome, reference) -> dict:
    xs, ys = _pick_curve(recording, outcome)
    ref_x, ref_y = reference
    target = 0.99 * ref_y[-1]
    reached = next((x for x, y in zip(xs, ys, strict=True) if y is not None and y >= target), None)
    # trials among the unpruned search's top 5 (validation) that this pruner stopped
    ranked = sorted(
        (r for r in recording["rows"] if r["value"] is not None), key=lambda r: -r["value"]
    )
    top = {r["number"] for r in ranked[:5]}
    lost = [
        row["family"]
        for row, (_, finished) in zip(recording["rows"], outcome, strict=True)
        if row["number"] in top and not finished
    ]
    pruned_by_family = defaultdict(lambda: [0, 0])
    for row, (_trained, finished) in zip(recording["rows"], outcome, strict=True):
        if row["recipe"] is None and row["value"] is not None:
            pruned_by_family[row["family"]][1] += 1
            pruned_by_family[row["family"]][0] += not finished
    pick = _final_pick(recording, outcome)
    return {
        "validation_quality": pick["value"] / max(r["value"] or 0 for r in recording["rows"]),
        "pick_is_recipe": pick["recipe"] is not None,
        "epochs_fraction": xs[-1] / ref_x[-1],
        "quality": ys[-1] / ref_y[-1],
        "fraction_to_99": None if reached is None else reached / ref_x[-1],
        "top5_pruned": lost,
        "reference_epochs": ref_x[-1],
        "reference_test": ref_y[-1],
        "pruned_by_family": dict(pruned_by_family),
        "curve": [xs, ys],
    }


def replay_all(recordings: list[dict]) -> dict:
    from lossearch.search_space import SearchSpace

    results: dict[str, list[dict]] = defaultdict(list)
    for recording in recordings:
        task, epochs = recording["task"], recording["epochs"]
        n_recipes = len(SearchSpace.load(_space(task), task=task).recipes)
        candidates = pruners(epochs, n_recipes)
        reference = _pick_curve(recording, replay(recording, candidates["none"]))
        for name, make in candidates.items():
            row = evaluate(recording, replay(recording, make), reference)
            results[name].append({"problem": recording["problem"], "seed": recording["seed"]} | row)
    return dict(results)


def _space(task: str) -> str:
    from efficacy import SPACE

    return SPACE[task]


def summary(results: dict) -> dict[str, dict]:
    """Per pruner: mean (and worst) quality and epochs over every problem and seed."""
    out = {}
    for name, rows in results.items():
        quality = [r["quality"] for r in rows]
        out[name] = {
            "quality_mean": statistics.mean(quality),
            "quality_worst": min(quality),
            "epochs_mean": statistics.mean(r["epochs_fraction"] for r in rows),
            "meets": sum(r["quality"] >= 0.99 and r["epochs_fraction"] <= 0.35 for r in rows),
            "n": len(rows),
            "top5_pruned": sum(len(r["top5_pruned"]) for r in rows),
            "validation_mean": statistics.mean(r["validation_quality"] for r in rows),
            "recipe_picks": sum(r["pick_is_recipe"] for r in rows),
        }
    return out


def winner(summ: dict) -> str:
    """The cheapest pruner whose mean quality is >= 99% and worst >= 97% of unpruned."""
    fine = [
        n
        for n, s in summ.items()
        if s["quality_mean"] >= 0.99 and s["quality_worst"] >= 0.97 and not n.startswith("default")
    ]
    return min(fine, key=lambda n: summ[n]["epochs_mean"])


# -- report ---------------------------------------------------------------------------------


def _mean_curve(rows, grid):
    """Best-so-far test quality (fraction of the unpruned pick's) on a grid of epoch fractions,
    averaged over the recordings; it ends where the first of them ends."""
    curves = []
    for r in rows:
        xs, ys = r["curve"]
        total, final = r["reference_epochs"], r["reference_test"]
        values = np.full(len(grid), np.nan)
        for x, y in zip(xs, ys, strict=True):
            if y is not None:
                values[grid >= x / total] = y / final
        values[grid > xs[-1] / total] = np.nan
        curves.append(values)
    return np.vstack(curves).mean(axis=0)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, rows in results.items():
        style = "-" if name == "none" or name.startswith("default") else "--"
        (line,) = ax.plot(grid, _mean_curve(rows, grid), style, label=name, linewidth=1.4)
        end_x = statistics.mean(r["epochs_fraction"] for r in rows)
        end_y = statistics.mean(r["quality"] for r in rows)
        ax.plot([end_x], [end_y], "o", color=line.get_color())  # where the search ends
    ax.axvline(0.35, color="grey", linewidth=0.8)
    ax.axhline(0.99, color="grey", linewidth=0.8)
    ax.set_xlabel("cumulative epochs, fraction of the unpruned search's")
    ax.set_ylabel("test quality of the pick so far / unpruned pick")
    ax.set_ylim(0.9, 1.04)
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    ax.set_title(
        "Pick quality on the test set against epochs trained\n(mean of problems x seeds; "
        "a dot marks each pruner's mean end)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _family_rows(results: dict, names) -> list[str]:
    families = sorted({f for r in results["none"] for f in r["pruned_by_family"]})
    lines = [
        "| pruner | " + " | ".join(families) + " | top-5 trials stopped, by family |",
        "|---|" + "---|" * (len(families) + 1),
    ]
    for name in names:
        rows = results[name]
        cells = []
        for family in families:
            pruned = sum(r["pruned_by_family"].get(family, [0, 0])[0] for r in rows)
            total = sum(r["pruned_by_family"].get(family, [0, 0])[1] for r in rows)
            cells.append(f"{pruned}/{total}")
        lost = defaultdict(int)
        for r in rows:
            for family in r["top5_pruned"]:
                lost[family] += 1
        shown = ", ".join(f"{f} {n}" for f, n in sorted(lost.items())) or "none"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {shown} |")
    return lines


def summarize(saved: dict) -> str:
    summ = summary(saved["results"])
    best, meta = winner(summ), saved["meta"]
    w, shipped = summ[best], summ.get(SHIPPED)
    lines = [
        f"Measured {saved['date']} (results committed in {committed_in(SAVED)}; "
        "`benchmarks/pruning_benchmark.py`): "
        f"{len(meta['problems'])} problems × {len(meta['seeds'])} seeds, unpruned searches of "
        f"{meta['trials']} trials replayed under each pruner; no interval (8 recordings).",
        "",
        f"- Winner under the rule (mean test quality of the pick ≥ 99% of the unpruned pick's, "
        f"worst ≥ 97%, fewest epochs): **{best}**, {100 * w['quality_mean']:.1f}% of the "
        f"quality (worst {100 * w['quality_worst']:.1f}%) at {100 * w['epochs_mean']:.0f}% of "
        f"the epochs; it stopped {w['top5_pruned']} of the {5 * w['n']} unpruned top-5 trials.",
    ]
    if shipped is not None and shipped["epochs_mean"] != w["epochs_mean"]:
        lines.append(
            f"- {SHIPPED}: {100 * shipped['quality_mean']:.1f}% of the quality at "
            f"{100 * shipped['epochs_mean']:.0f}% of the epochs."
        )
    return "\n".join(lines)


def render(saved: dict) -> str:
    results, meta = saved["results"], saved["meta"]
    summ = summary(results)
    best = winner(summ)
    lines = [
        "## Pruning: which pruner, judged on the test set",
        "",
        f"Measured {saved['date']} with `benchmarks/pruning_benchmark.py` on {meta['machine']}.",
        "",
        f"For each of {', '.join(meta['problems'])} and seeds {meta['seeds']}, one unpruned "
        f"search of {meta['trials']} trials of {meta['epochs']} epochs (the task's bundled "
        'space, one hold-out split, `selection="best"`) recorded every trial\'s per-epoch '
        "validation objective and its score on a held-out test set the search never saw "
        "(balanced accuracy; PR-AUC for the binary problems), under the trial's own decision "
        "rule. Each pruner then replays the same trials in the same order on a fresh Optuna "
        "study: a trial it lets finish trained exactly as recorded (same seed), so the pick "
        "(best validation among the finished trials) and its test score are that pruned "
        "search's; what the replay leaves out is the sampler learning from pruned trials. "
        "Recipes are never pruned, as in `optimize`. Recording took "
        f"{meta['record_seconds'] / 60:.0f} min of searches; the replays take seconds.",
        "",
        "![pruners](pruning_pruners.png)",
        "",
        "| pruner | test quality of the pick / unpruned (mean, worst) | epochs / unpruned (mean) "
        "| recordings meeting both goals | unpruned top-5 trials it stopped | validation "
        "objective of the pick / unpruned | picks that are a recipe |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in summ.items():
        mark = " **(winner)**" if name == best else ""
        lines.append(
            f"| {name}{mark} | {100 * s['quality_mean']:.1f}%, {100 * s['quality_worst']:.1f}% | "
            f"{100 * s['epochs_mean']:.0f}% | {s['meets']}/{s['n']} | {s['top5_pruned']} | "
            f"{100 * s['validation_mean']:.1f}% | {s['recipe_picks']}/{s['n']} |"
        )
    w = summ[best]
    lines += [
        "",
        "Goals, over every problem and seed: pick quality ≥ 99% of the unpruned pick's on the "
        "test set, at ≤ 35% of its epochs. The winner is the cheapest pruner whose mean "
        "quality is ≥ 99% and whose worst is ≥ 97%: "
        f"**{best}**, {100 * w['quality_mean']:.1f}% of the quality at "
        f"{100 * w['epochs_mean']:.0f}% of the epochs: "
        + (
            "**met**."
            if w["epochs_mean"] <= 0.35
            else f"**missed by {100 * (w['epochs_mean'] - 0.35):.0f} points of epochs**."
        ),
        "",
        "Per family: sampled trials each pruner stopped (of those that completed unpruned), "
        "and which of the unpruned search's top-5 validation trials it stopped. Tail classes "
        "and deferred re-weighting improve late, so a pruner that judges early can stop a "
        f"trial that would have ranked high: the winner stopped {w['top5_pruned']} of the "
        f"{5 * w['n']} top-5 trials, and its pick kept {100 * w['quality_mean']:.1f}% of the "
        "unpruned pick's test quality on average.",
        "",
        *_family_rows(results, list(results)),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--replay-only", action="store_true", help="use the cached recordings")
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.render:
        saved = json.loads(SAVED.read_text())
        write_section("pruning", render(saved), summarize(saved))
        print(summarize(saved))
        return 0
    if args.replay_only:
        recordings = _recordings(args.trials, args.epochs)
    else:
        recordings = record_all(args.trials, args.epochs, args.jobs)
    results = replay_all(recordings)
    saved = {
        "date": time.strftime("%Y-%m-%d"),
        "meta": {
            "machine": machine("one thread per search"),
            "problems": sorted({r["problem"] for r in recordings}),
            "seeds": sorted({r["seed"] for r in recordings}),
            "trials": args.trials,
            "epochs": args.epochs,
            "record_seconds": sum(r["seconds"] for r in recordings),
        },
        "results": results,
    }
    SAVED.write_text(json.dumps(saved))
    plot(results, RESULTS / "pruning_pruners.png")
    write_section("pruning", render(saved), summarize(saved))
    print(summarize(saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
