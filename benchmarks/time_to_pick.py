"""Wall time to the final pick: lossearch (search, early stop, confirmation, refit) against
the plain Optuna loop with the same ``n_trials`` and ``epochs``, and against lossearch at an
earlier commit (``--before``), in one run, on development and confirmation problems.

Each (problem, seed, method) is one job of ``efficacy.run_job`` (one thread, a fresh
process), scored on the problem's held-out test set. ``--before COMMIT`` runs that
commit's ``lossearch`` package (``git archive`` into a cache folder, first on the job's
``sys.path``) through the same harness: the per-trial fixed cost before and after is
then measured side by side. Optional methods: Keras Tuner's Hyperband on the same space,
lossearch unpruned.

Run: .venv/bin/python benchmarks/time_to_pick.py [--trials 60] [--epochs 20] [--seeds 0 1]
     [--before 13a88ba] [--jobs 2]   (`--render` rewrites the section from the saved JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from efficacy import commit, run_job  # noqa: E402
from efficacy_data import BY_NAME  # noqa: E402
from efficacy_report import TIE, clustered, equivalent  # noqa: E402
from sections import machine, publish  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path.home() / ".cache" / "lossearch-bench"
PROBLEMS = ("digits-LT50", "segment-LT100", "yeast3", "vehicle0", "digits-img-LT50")  # development
CONFIRMATION = ("synthA-LT50", "synthB-LT100", "breast_cancer-rare")
LABELS = {
    "plain_optuna": "plain loop",
    "lossearch_before": "lossearch before",
    "lossearch": "lossearch",
    "keras_tuner_hyperband": "KT Hyperband",
    "lossearch_unpruned": "unpruned",
    "lossearch_margin_1": "margin 1",
    "lossearch_epoch_patience": "patience in epochs",
}
# lossearch variants judged against the plain loop like lossearch itself
VARIANTS = {
    "lossearch_margin_1": "the default until 2026-12-03, `NoChallengerStopper(margin=1)`",
    "lossearch_epoch_patience": 'the candidate `NoChallengerStopper(evidence="epochs")`',
}
METRIC = {"multiclass": "balanced_accuracy", "binary": "pr_auc"}
GOAL = 0.5  # lossearch's wall time over the plain loop's


def checkout(rev: str) -> tuple[str, str]:
    """``(short commit, folder)``: the ``lossearch`` package of ``rev``, unpacked once."""
    short = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = CACHE / f"lossearch-{short}"
    if not (folder / "search_spaces").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", short, "lossearch", "search_spaces"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return short, str(folder)


def measure(args, before: tuple[str, str] | None, save, **fields) -> list[dict]:
    """Run the jobs (``fields`` added to each); ``save(rows)`` after each, so that a stopped
    run keeps what it measured."""
    budget = {"n_trials": args.trials, "epochs": args.epochs, "batch_size": 32}
    methods = list(args.methods) + (["lossearch_before"] if before else [])
    todo = []
    for problem in args.problems:
        for seed in args.seeds:
            for method in methods:
                job = {"problem": problem, "seed": seed, "budget": budget, **fields}
                if method == "lossearch_before":
                    job.update(method="lossearch", code=before[1], code_commit=before[0])
                else:
                    job.update(method=method, commit=commit())
                todo.append(job)
    # a fresh process per job: no job inherits another's TensorFlow state
    rows = []
    with ProcessPoolExecutor(args.jobs, get_context("spawn"), max_tasks_per_child=1) as pool:
        for job, row in zip(todo, pool.map(run_job, todo), strict=True):
            if "code" in job:
                row.update(method="lossearch_before", commit=job["code_commit"])
            print(f"{row['setting']} s{row['seed']} {row['method']}: {row['seconds']:.0f} s")
            rows.append(row)
            save(rows)
    return rows


# -- the section ------------------------------------------------------------------------------


def _methods(rows) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in LABELS if m in present]


def _cases(rows):
    """``(setting, seed, task, {method: row})`` per problem and seed, problems in order."""
    by = {}
    for r in rows:
        by.setdefault((r["setting"], r["seed"], r["task"]), {})[r["method"]] = r
    order = {name: i for i, name in enumerate(PROBLEMS + CONFIRMATION)}
    for key in sorted(by, key=lambda k: (order.get(k[0], 99), k[1])):
        yield (*key, by[key])


def _times_table(rows, methods) -> list[str]:
    others = [m for m in methods if m not in ("plain_optuna", "lossearch")]
    lines = [
        "| problem | role | seed | "
        + " | ".join(LABELS[m] for m in methods)
        + " | lossearch / plain | "
        + "".join(f"lossearch / {LABELS[m]} | " for m in others)
        + "trials run: "
        + " / ".join(LABELS[m] for m in ["lossearch", *VARIANTS] if m in methods)
        + " | test: "
        + ", ".join(LABELS[m] for m in methods)
        + " |",
        "|" + "---|" * (3 + len(methods) + 1 + len(others) + 2),
    ]
    for setting, seed, task, runs in _cases(rows):
        ours, metric = runs["lossearch"], METRIC[task]
        times = " | ".join(f"{runs[m]['seconds']:.0f} s" if m in runs else "–" for m in methods)
        ratios = " | ".join(
            f"{ours['seconds'] / runs[m]['seconds']:.2f}×" if m in runs else "–"
            for m in ["plain_optuna", *others]
        )
        tests = ", ".join(f"{runs[m]['scores'][metric]:.3f}" if m in runs else "–" for m in methods)
        ran = " / ".join(_ran(runs[m]) for m in ["lossearch", *VARIANTS] if m in runs)
        lines.append(
            f"| {setting} | {ours['role']} | {seed} | {times} | {ratios} | {ran} | {tests} |"
        )
    return lines


def commits(rows) -> str:
    """The commits that measured ``rows`` (several when ``--add`` ran later code)."""
    return " and ".join(sorted({r.get("commit", "?") for r in rows}))


def _ran(row: dict) -> str:
    return f"{row.get('trials_run', '?')}" + (" (stopped early)" if row.get("stopped") else "")


def paired(rows, role: str, other: str, ours: str = "lossearch") -> tuple[dict, dict]:
    """``ours`` against ``other`` on ``role``'s problems: the time ratio and the test
    difference, each a mean over base datasets with its clustered 95% interval."""
    ratios, diffs = paired_pairs(rows, role, other, ours)
    return (clustered(ratios), clustered(diffs)) if ratios else (None, None)


def paired_pairs(rows, role: str, other: str, ours: str = "lossearch") -> tuple[list, list]:
    """``(cluster, time ratio)`` and ``(cluster, test difference)`` of each search of
    ``role``'s problems that both methods ran."""
    ratios, diffs = [], []
    for _, _, task, runs in _cases(rows):
        if ours not in runs or runs[ours]["role"] != role or other not in runs:
            continue
        ours_row = runs[ours]
        base = BY_NAME[ours_row["setting"]].cluster(ours_row["seed"])
        ratios.append((base, ours_row["seconds"] / runs[other]["seconds"]))
        metric = METRIC[task]
        diffs.append((base, ours_row["scores"][metric] - runs[other]["scores"][metric]))
    return ratios, diffs


def interval(stat: dict, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    low, high = stat["low"] * scale, stat["high"] * scale
    if low != low:  # NaN: one unit
        return "n/a"
    return f"[{fmt.format(low)}, {fmt.format(high)}]" + ("†" if stat["one_base"] else "")


def _goals(rows, methods) -> list[str]:
    lines = []
    for role in ("development", "confirmation"):
        ratio, diff = paired(rows, role, "plain_optuna")
        if ratio is None:
            continue
        fast = "**met**" if ratio["high"] <= GOAL else "**not shown**"
        if ratio["low"] > GOAL:
            fast = "**missed**"
        equal, word = equivalent(paired_pairs(rows, role, "plain_optuna")[1])
        lines.append(
            f"- {role} ({ratio['n']} problem × seed cases, {ratio['bases']} base datasets): "
            f"time to the pick {ratio['mean']:.2f}× the plain loop's "
            f"{interval(ratio)} → ≤ {GOAL}× {fast}; test quality lossearch − plain loop "
            f"{diff['mean'] * 100:+.2f} points {interval(diff, 100, '{:+.2f}')}, 90% "
            f"interval {interval(equal, 100, '{:+.2f}')} → equal within ±{TIE * 100:g} points "
            f"(two one-sided tests): **{word}**."
        )
        ratio_b, diff_b = paired(rows, role, "lossearch_before")
        if ratio_b is not None:
            same, n, worst = same_picks(rows, role, "lossearch_before")
            lines.append(
                f"  Against lossearch before: {ratio_b['mean']:.2f}× the time "
                f"{interval(ratio_b)}, test {diff_b['mean'] * 100:+.2f} points "
                f"{interval(diff_b, 100, '{:+.2f}')}; the same pick in {same} of {n} "
                f"searches, the lowest search {worst * 100:+.2f} points against its pick."
            )
        lines += _variant_lines(rows, role)
    return lines


def same_picks(rows, role: str, other: str, ours: str = "lossearch") -> tuple[int, int, float]:
    """How many of ``role``'s searches by ``ours`` picked what ``other`` picked, out of how
    many, and the lowest test difference of one search against it."""
    pairs = [
        (runs[ours], runs[other])
        for _, _, _, runs in _cases(rows)
        if other in runs and ours in runs and runs[ours]["role"] == role
    ]
    diffs = [
        ours["scores"][METRIC[ours["task"]]] - theirs["scores"][METRIC[ours["task"]]]
        for ours, theirs in pairs
    ]
    same = sum(ours["pick"] == theirs["pick"] for ours, theirs in pairs)
    return same, len(pairs), min(diffs)


def _variant_lines(rows, role: str) -> list[str]:
    """Each lossearch variant against the plain loop, and how often it stopped early."""
    lines = []
    for variant, described in VARIANTS.items():
        ratio, diff = paired(rows, role, "plain_optuna", ours=variant)
        if ratio is None:
            continue
        runs = [r for r in rows if r["method"] == variant and r["role"] == role]
        lines.append(
            f"  With {described} ({LABELS[variant]}): {ratio['mean']:.2f}× the plain loop's "
            f"time {interval(ratio)}, test {diff['mean'] * 100:+.2f} points "
            f"{interval(diff, 100, '{:+.2f}')}; stopped early in "
            f"{sum(bool(r.get('stopped')) for r in runs)} of {len(runs)} searches."
        )
    return lines


def _trial_cost(rows, methods) -> list[str]:
    """The per-trial fixed cost and the per-epoch cost, fitted over each search's trials."""
    lines = ["| code | searches | fixed cost per trial | per epoch | sampled trials trained |"]
    lines.append("|---|---|---|---|---|")
    compared = [m for m in ("lossearch_before", "lossearch") if m in methods]
    # the same problems and seeds for both
    cases = [runs for *_, runs in _cases(rows) if all(m in runs for m in compared)]
    for method in compared:
        costs = [runs[method]["trial_cost"] for runs in cases if runs[method].get("trial_cost")]
        if not costs:
            continue
        code = commits([r for r in rows if r["method"] == method])
        mean = {k: statistics.mean(c[k] for c in costs) for k in costs[0]}
        lines.append(
            f"| {LABELS[method]} ({code}) | {len(costs)} | {mean['fixed']:.2f} s | "
            f"{mean['per_epoch'] * 1000:.0f} ms | {mean['sampled_trials']:.0f} |"
        )
    return lines


def _phases_table(rows) -> list[str]:
    """Where lossearch's time goes (``result.seconds``), and why it stopped, if it did."""
    lines = [
        "| problem | seed | method | total | search (of it: recipes) | confirmation | refit | "
        "pick | stopped early |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for setting, seed, _, runs in _cases(rows):
        for method in ["lossearch", *VARIANTS]:
            if method not in runs:
                continue
            ours, p = runs[method], runs[method]["phases"]
            lines.append(
                f"| {setting} | {seed} | {LABELS[method]} | {ours['seconds']:.0f} s | "
                f"{p['search']:.0f} s ({p['search_recipes']:.0f} s) | {p['confirmation']:.0f} s | "
                f"{p['refit']:.0f} s | {ours['pick']} | {ours.get('stopped') or 'no'} |"
            )
    return lines


def summarize(saved: dict) -> str:
    """The goals against the plain loop, per role (the sub-lines stay in the detail)."""
    rows, meta = saved["rows"], saved["meta"]
    code = commits([r for r in rows if r["method"] != "lossearch_before"])
    goals = [line for line in _goals(rows, _methods(rows)) if line.startswith("- ")]
    return "\n".join(
        [
            f"Measured {saved['date']} on code {code} (`benchmarks/time_to_pick.py`): "
            f"{meta['trials']} trials of {meta['epochs']} epochs, lossearch's defaults against "
            "a plain TPE loop over the same space; test on data no method saw.",
            "",
            *goals,
        ]
    )


def render(saved: dict) -> str:
    rows, meta = saved["rows"], saved["meta"]
    methods = _methods(rows)
    before = next((r["commit"] for r in rows if r["method"] == "lossearch_before"), None)
    return "\n".join(
        [
            "## Time to the final pick",
            "",
            f"Measured {saved['date']} with `benchmarks/time_to_pick.py` on {meta['machine']}: "
            f"{meta['trials']} trials of {meta['epochs']} epochs, each method one process of "
            f"one thread, {meta['layout']}; code "
            f"{commits([r for r in rows if r['method'] != 'lossearch_before'])}, "
            f"{meta.get('command', '`benchmarks/time_to_pick.py`')}"
            + (f", lossearch before = commit {before}" if before else "")
            + ". lossearch runs its defaults (early stop, successive-halving pruning, robust "
            'selection with confirmation runs, `cv="auto"`, the decision rule, the refit); '
            "the plain loop is TPE over the same space on one 80/20 hold-out split, its top "
            "trial refit on all the data. Test: balanced accuracy (multiclass), PR-AUC "
            "(binary), on data no method saw. Development problems are those defaults may "
            "have been chosen on (the early stop's margin, -1.64, then its paired standard "
            "error, then judging a deferred re-weighting trial only from its re-weighting's "
            "start were made the default on 2026-12-03, each by a rule written before the "
            "development runs that decided it: docs/selection.md); confirmation problems "
            "are reported only. With 2 side by "
            "side, each job shared the 2 cores with its neighbour in the queue (ordered by "
            "problem, seed, then method as listed below; each command its own queue)."
            + (f" Rows relabelled {meta['relabelled']}." if meta.get("relabelled") else ""),
            "",
            *_times_table(rows, methods),
            "",
            "Goals (intervals: 95%, clustered on the base dataset; † one base, over its "
            "seeds; a goal is met only when the whole interval meets it):",
            "",
            *_goals(rows, methods),
            "",
            "What a trial costs (`fixed + per_epoch × epochs`, least squares over each "
            "search's trained trials, cross-validation folds counted as epochs):",
            "",
            *_trial_cost(rows, methods),
            "",
            "Where lossearch's time goes (`result.seconds`; the rest: data checks, MLflow "
            "artifacts, the report):",
            "",
            *_phases_table(rows),
            "",
        ]
    )


def header(args, script: str, argv=None) -> dict:
    """What a run saves beside its rows: the date, the machine, the budget, the commit, the
    command and how many jobs shared the machine."""
    return {
        "date": time.strftime("%Y-%m-%d"),
        "meta": {
            "machine": machine(),
            "trials": args.trials,
            "epochs": args.epochs,
            "commit": commit(),
            "command": f"`{' '.join([script, *(argv or sys.argv[1:])])}`",
            "layout": "alone on the machine" if args.jobs == 1 else f"{args.jobs} side by side",
        },
    }


def saver(path: Path, args, script: str, argv=None):
    """The ``save(rows)`` a run calls after each job: with ``--add`` (``args.add``) one that
    keeps the saved rows (:func:`adding_saver`), else one that writes a new file with this
    run's :func:`header`."""
    if getattr(args, "add", False):
        return adding_saver(path, args, script, argv)
    saved = header(args, script, argv)

    def save(rows):
        path.write_text(json.dumps({**saved, "rows": rows}, indent=1))

    return save


def adding_saver(path: Path, args, script: str, argv=None):
    """``--add``: a ``save(rows)`` that keeps the saved rows this run does not redo (same
    problem, seed and method are replaced) and records the command and date beside the
    first run's. The budget must be the saved one."""
    kept = json.loads(path.read_text())
    assert (kept["meta"]["trials"], kept["meta"]["epochs"]) == (args.trials, args.epochs)
    command = " ".join([script, *(argv or sys.argv[1:])])
    first = kept["meta"].get("command", script)
    first = first if first.startswith("`") else f"`{first}`"
    kept["meta"]["command"] = f"{first}, then `{command}`"
    today = time.strftime("%Y-%m-%d")
    if today not in kept["date"]:
        kept["date"] = f"{kept['date']} and {today}"

    def key(row: dict) -> tuple:
        return row["setting"], row["seed"], row["method"]

    def save(rows):
        fresh = {key(r) for r in rows}
        old = [r for r in kept["rows"] if key(r) not in fresh]
        path.write_text(json.dumps({**kept, "rows": old + rows}, indent=1))

    return save


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS + CONFIRMATION))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["plain_optuna", "lossearch"])
    parser.add_argument("--before", help="also run lossearch at this commit (git revision)")
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    parser.add_argument(
        "--add", action="store_true", help="add these rows to the saved ones (same budget)"
    )
    args = parser.parse_args(argv)
    path = RESULTS / "time_to_pick.json"
    if not args.render:
        before = checkout(args.before) if args.before else None
        measure(args, before, saver(path, args, "benchmarks/time_to_pick.py", argv))
    publish("time-to-pick", path, render, summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
