"""Long-tailed images: is there a winner to find, and does the default search find it?

Per (MNIST problem, seed), side by side in one run: lossearch with its whole trial budget
and no pruner (``early_stop=False``: every sampled configuration trains every epoch),
lossearch with its defaults (early stop, successive halving), and each candidate default of
:data:`CANDIDATES` (judged under docs/selection.md's rule for images). Both get efficacy's regret
analysis: the top trials by validation, every recipe and the pick, retrained on the whole
pool with the benchmark's seed and scored on the balanced test set under their own decision
rules. From these:

* **the regret table** (whole budget): the oracle gap (the best retrained configuration on
  test minus the pick), the best sampled configuration minus the best recipe, what the test
  winners are, and how well validation ranks the retrained configurations (Spearman);
* **does the default capture it**: where the whole-budget pick beats the incumbent on test by
  at least a point, the default pick's gain against half of it; everywhere, the default pick
  minus the incumbent against −0.5 points (judged on the interval's lower end);
* **the delivered model is its loss**: ``result.model`` (the refit with its decision layer)
  minus the same loss and decision retrained by hand (the regret analysis's retraining of the
  pick), equal only when the 90% interval lies inside ±0.5 points (two one-sided tests);
* **the decision rule's share**: the delivered model with and without its decision layer.

Intervals cluster on :meth:`efficacy_data.Problem.cluster` (an MNIST seed's shard).
Development problems only, unless ``--problems`` names others.

Run: .venv/bin/python benchmarks/image_searches.py [--trials 40] [--epochs 12]
     [--seeds 0 1 2 3 4] [--methods ...] [--jobs 2] [--add] [--results PATH]   (`--add`
     keeps the saved rows it does not redo; `--render` rewrites the section from the saved
     JSON; `--results` writes another JSON and no section)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from efficacy_data import BY_NAME, PROBLEMS
from efficacy_report import GAP, clustered, equivalent
from sections import publish
from time_to_pick import RESULTS, interval, measure, saver
from whole_budget import METHOD as WHOLE

DEFAULT = "lossearch"
# other stopping rules, run beside the default under docs/selection.md's rule for images
CANDIDATES = {
    "lossearch_epoch_patience": 'patience in epochs (`NoChallengerStopper(evidence="epochs")`)'
}
DEVELOPMENT = tuple(p.name for p in PROBLEMS if p.base == "mnist" and p.role == "development")
METRIC = "balanced_accuracy"
BAR = 0.005  # "never more than half a point below the incumbent"
PATH = RESULTS / "image_searches.json"


# -- one search's figures ---------------------------------------------------------------------


def retrained(row: dict) -> dict:
    """``{trial: (validation, test, is recipe, config)}`` of a search's regret analysis."""
    return {
        r["trial"]: (r["value"], r["test"][METRIC], bool(r["recipe"]), r.get("config", "?"))
        for r in row["regret"]
    }


def incumbent_trial(row: dict) -> int:
    return next(c["trial"] for c in row["confirmation"] if "incumbent" in c["role"])


def chosen_trial(row: dict) -> int:
    return next(r["trial"] for r in row["regret"] if r["chosen"])


def spearman(pairs: list[tuple[float, float]]) -> float:
    """Rank correlation of (validation, test) over the retrained configurations."""
    from scipy.stats import spearmanr

    return float(spearmanr(*zip(*pairs, strict=True)).statistic) if len(pairs) > 2 else 0.0


def regret_of(row: dict) -> dict:
    """The whole-budget search's regret figures, test points as fractions."""
    runs = retrained(row)
    test = {n: v[1] for n, v in runs.items()}
    sampled = [n for n, v in runs.items() if not v[2]]
    recipes = [n for n, v in runs.items() if v[2]]
    best = max(runs, key=test.get)
    best_sampled = max(sampled, key=test.get) if sampled else None
    return {
        "oracle_gap": test[best] - test[chosen_trial(row)],
        "sampled_vs_recipes": (test[best_sampled] if sampled else -1)
        - max(test[n] for n in recipes),
        "winner": runs[best][3],
        "winner_is_recipe": runs[best][2],
        "rank_correlation": spearman([(v[0], v[1]) for v in runs.values()]),
        "pick_vs_incumbent": test[chosen_trial(row)] - test[incumbent_trial(row)],
    }


TRAITS = {  # what a winning configuration may share, as its description says it
    "deferred re-weighting": "(DRW from",
    "label smoothing": "label smoothing",
    "a margin (LDAM, VS)": ("ldam(", "vs("),
    "logit adjustment": "logit_adjusted(",
}


def traits(configs: list[str]) -> str:
    """How many of ``configs`` have each of :data:`TRAITS`, in words."""
    counts = []
    for name, marks in TRAITS.items():
        marks = (marks,) if isinstance(marks, str) else marks
        n = sum(any(m in c for m in marks) for c in configs)
        counts.append(f"{n} {name}")
    return ", ".join(counts)


def delivered_vs_by_hand(row: dict) -> float:
    """``result.model`` on test minus its loss and decision retrained by hand."""
    return row["scores"][METRIC] - retrained(row)[chosen_trial(row)][1]


# -- the section ------------------------------------------------------------------------------


def pairs_of(rows: list[dict], method: str = DEFAULT) -> list[tuple[dict, dict]]:
    """``(whole budget, method)`` rows of each (problem, seed) that ran both."""
    by = {}
    for r in rows:
        by.setdefault((r["setting"], r["seed"]), {})[r["method"]] = r
    return [(m[WHOLE], m[method]) for m in by.values() if WHOLE in m and method in m]


def _cluster(row: dict) -> str:
    return BY_NAME[row["setting"]].cluster(row["seed"])


def _pts(value: float) -> str:
    return f"{value * 100:+.2f}"


def _stat_line(label: str, pairs, bar: float | None = None) -> str:
    stat = clustered(pairs)
    line = (
        f"- {label}: {_pts(stat['mean'])} points {interval(stat, 100, '{:+.2f}')} "
        f"({stat['n']} searches, {stat['bases']} clusters; {stat['wins']} above, "
        f"{stat['ties']} tied, {stat['losses']} below)"
    )
    if bar is not None:
        met = stat["low"] > bar
        line += f" → above {bar * 100:+.1f}: **{'met' if met else 'not shown'}**"
    return line + "."


def _table(pairs, others: dict[str, list]) -> list[str]:
    """One row per search: the whole budget's regret figures, then each other method's pick
    − recipe to beat, trials (stopped early?) and time, ``others`` by method."""
    names = [DEFAULT, *others]
    lines = [
        "| problem | seed | oracle gap | best sampled − best recipe | test winner | "
        "validation→test rank corr. | delivered − by hand | whole budget: pick − recipe to beat, "
        "time | "
        + " | ".join(f"{_label(m)}: pick − recipe to beat, trials, time" for m in names)
        + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(names),
    ]
    rows = {(w["setting"], w["seed"]): {DEFAULT: d} for w, d in pairs}
    for method, its_pairs in others.items():
        for w, row in its_pairs:
            rows.setdefault((w["setting"], w["seed"]), {})[method] = row
    for whole, _ in pairs:
        w = regret_of(whole)
        ran = rows[(whole["setting"], whole["seed"])]
        cells = [_method_cell(ran[m]) if m in ran else "–" for m in names]
        lines.append(
            f"| {whole['setting']} | {whole['seed']} | {_pts(w['oracle_gap'])} | "
            f"{_pts(w['sampled_vs_recipes'])} | {w['winner']} | {w['rank_correlation']:.2f} | "
            f"{_pts(delivered_vs_by_hand(whole))} | {_pts(w['pick_vs_incumbent'])}, "
            f"{whole['seconds']:.0f} s | " + " | ".join(cells) + " |"
        )
    return lines


def _method_cell(row: dict) -> str:
    stopped = " stopped" if row.get("stopped") else ""
    return (
        f"{_pts(regret_of(row)['pick_vs_incumbent'])}, {row['trials_run']}{stopped}, "
        f"{row['seconds']:.0f} s"
    )


def _label(method: str) -> str:
    return "default" if method == DEFAULT else CANDIDATES.get(method, method).split(" (")[0]


def _capture_lines(pairs, label: str) -> list[str]:
    """Where the whole budget found a winner: how much of it the default pick kept."""
    worth = [
        (_cluster(w), regret_of(w)["pick_vs_incumbent"], regret_of(d)["pick_vs_incumbent"])
        for w, d in pairs
        if regret_of(w)["pick_vs_incumbent"] >= GAP
    ]
    if not worth:
        return [
            f"- The whole-budget pick beat the recipe to beat by {GAP * 100:g} point or more in "
            f"none of the {len(pairs)} searches: there was no winner for the {label} to capture."
        ]
    stat = clustered([(c, got - 0.5 * gain) for c, gain, got in worth])
    met = "met" if stat["low"] > 0 else "not shown"
    return [
        f"- Where the whole-budget pick beat the recipe to beat by ≥ {GAP * 100:g} point "
        f"({len(worth)} searches, mean {_pts(statistics.mean(g for _, g, _ in worth))}): the "
        f"{label} pick − ½ × that gain {_pts(stat['mean'])} points "
        f"{interval(stat, 100, '{:+.2f}')} → captures at least half: **{met}**."
    ]


def _equivalence_line(label: str, pairs) -> str:
    stat, word = equivalent(pairs)
    return (
        f"- {label}: {_pts(stat['mean'])} points, 90% interval "
        f"{interval(stat, 100, '{:+.2f}')} ({stat['n']} searches, {stat['bases']} clusters) → "
        f"within ±{BAR * 100:.1f} (two one-sided tests): **{word}**."
    )


def render(saved: dict) -> str:
    rows, meta = saved["rows"], saved["meta"]
    methods = [m for m in CANDIDATES if any(r["method"] == m for r in rows)]
    commits = ", ".join(sorted({r["commit"] for r in rows}))
    lines = [
        "## Long-tailed images: the whole budget against the default",
        "",
        f"Measured {saved['date']} with `benchmarks/image_searches.py` on {meta['machine']}: "
        f"{meta['trials']} trials of {meta['epochs']} epochs, code {commits}, "
        f"{meta['command']}, {meta['layout']}. Per problem and seed, lossearch with the whole "
        "budget unpruned (`early_stop=False`, no pruner), with its defaults"
        + "".join(f", and with {CANDIDATES[m]}" for m in methods)
        + ", side by side; each search's top trials by validation, every recipe and its "
        "pick retrained on the whole pool and scored on the balanced test set (500 images a "
        "class), balanced accuracy, points. Problems and models: `efficacy_data.py`, "
        "development and confirmation problems apart (nothing was chosen on the latter); an "
        "MNIST seed is its own shard of images and class order, and intervals cluster on it "
        "(95%, t over the clusters). The best sampled configuration on test is a maximum over "
        "more draws than the recipes get, so biased upwards; the oracle gap too.",
        "",
    ]
    for role in ("development", "confirmation"):
        mine = [r for r in rows if BY_NAME[r["setting"]].role == role]
        if pairs_of(mine):
            lines += [f"### {role.capitalize()} problems", "", *_role_lines(mine)]
    return "\n".join(lines)


def summarize(saved: dict) -> str:
    """Per role: is there a winner, does the default find it, at what time."""
    rows, meta = saved["rows"], saved["meta"]
    lines = [
        f"Measured {saved['date']} on code {', '.join(sorted({r['commit'] for r in rows}))} "
        f"(`benchmarks/image_searches.py`): MNIST long-tailed, a small CNN, {meta['trials']} "
        f"trials of {meta['epochs']} epochs; the whole budget unpruned against the default, "
        "side by side; test balanced accuracy, points, intervals clustered on the MNIST shard.",
    ]
    for role in ("development", "confirmation"):
        pairs = pairs_of([r for r in rows if BY_NAME[r["setting"]].role == role])
        if not pairs:
            continue
        problems = ", ".join(sorted({w["setting"] for w, _ in pairs}))
        delivered = [(_cluster(w), d["scores"][METRIC] - w["scores"][METRIC]) for w, d in pairs]
        ratio = clustered([(_cluster(w), d["seconds"] / w["seconds"]) for w, d in pairs])
        lines += [
            "",
            f"{role.capitalize()} ({problems}):",
            "",
            _stat_line("best sampled − best recipe", _over(pairs, "sampled_vs_recipes")),
            _stat_line("whole-budget pick − recipe to beat", _over(pairs, "pick_vs_incumbent")),
            _stat_line(
                "default pick − recipe to beat",
                [(_cluster(d), regret_of(d)["pick_vs_incumbent"]) for _, d in pairs],
            ),
            _equivalence_line("delivered default − delivered whole budget", delivered),
            f"- the default's time: {ratio['mean']:.2f}× the whole budget's {interval(ratio)}.",
        ]
    return "\n".join(lines)


def _role_lines(rows: list[dict]) -> list[str]:
    """The table and every figure of one role's searches."""
    pairs = pairs_of(rows)
    others = {m: pairs_of(rows, m) for m in CANDIDATES if pairs_of(rows, m)}
    every = [r for r in rows if r["method"] in (WHOLE, DEFAULT, *others)]
    return [
        *_table(pairs, others),
        "",
        *_winner_lines(pairs),
        "",
        "The picks:",
        "",
        *_picks(pairs, others),
        "",
        *_finding_lines(pairs, DEFAULT),
        *(line for m, its in others.items() for line in _finding_lines(its, m)),
        "The delivered model and the decision rule (every search's pick; `result.model` as "
        "the code above refit it, which `tests/test_runner.py` checks weight for weight "
        "against a loss trained by hand):",
        "",
        _equivalence_line(
            "`result.model` − the same loss and decision trained by hand",
            [(_cluster(r), delivered_vs_by_hand(r)) for r in every],
        ),
        _stat_line(
            "decision rule: `result.model` − the same model without it",
            [
                (_cluster(r), r["scores"][METRIC] - r["scores_without_decision"][METRIC])
                for r in every
            ],
        ),
        "",
    ]


def _winner_lines(pairs) -> list[str]:
    """Is there a winner to find: the whole budget's regret figures."""
    return [
        "Is there a winner to find (whole budget)?",
        "",
        _stat_line("oracle gap (best retrained − pick)", _over(pairs, "oracle_gap")),
        _stat_line("best sampled − best recipe", _over(pairs, "sampled_vs_recipes")),
        _stat_line("whole-budget pick − recipe to beat", _over(pairs, "pick_vs_incumbent")),
        f"- validation ranks the retrained configurations with a Spearman correlation of "
        f"{statistics.mean(regret_of(w)['rank_correlation'] for w, _ in pairs):.2f} on "
        f"average; the test winner was a recipe in "
        f"{sum(regret_of(w)['winner_is_recipe'] for w, _ in pairs)} of {len(pairs)} searches.",
        f"- what the test winners have (of {len(pairs)}): "
        f"{traits([regret_of(w)['winner'] for w, _ in pairs])}; what the whole-budget "
        f"searches picked: {traits([w['pick'] for w, _ in pairs])}.",
    ]


def _finding_lines(pairs, method: str) -> list[str]:
    """Does ``method`` (the default or a candidate) find what the whole budget found?"""
    label = _label(method)
    ratio = clustered([(_cluster(w), d["seconds"] / w["seconds"]) for w, d in pairs])
    delivered = [(_cluster(w), d["scores"][METRIC] - w["scores"][METRIC]) for w, d in pairs]
    return [
        f"Does the {label} find it?"
        if method == DEFAULT
        else f"Does the candidate, {CANDIDATES[method]}, find it?",
        "",
        *_capture_lines(pairs, label),
        _stat_line(
            f"{label} pick − recipe to beat",
            [(_cluster(d), regret_of(d)["pick_vs_incumbent"]) for _, d in pairs],
            bar=-BAR,
        ),
        _stat_line(f"delivered {label} − delivered whole budget", delivered),
        _equivalence_line(f"the same, {label} − whole budget", delivered),
        f"- time: {ratio['mean']:.2f}× the whole budget's {interval(ratio)}; stopped early "
        f"in {sum(bool(d.get('stopped')) for _, d in pairs)} of {len(pairs)} searches.",
        "",
    ]


def _picks(pairs, others: dict[str, list]) -> list[str]:
    chosen = {(w["setting"], w["seed"]): [] for w, _ in pairs}
    for method, its in [(DEFAULT, pairs), *others.items()]:
        for w, row in its:
            chosen[(w["setting"], w["seed"])].append((_label(method), row))
    lines = []
    for whole, _ in pairs:
        ran = chosen[(whole["setting"], whole["seed"])]
        lines.append(
            f"- {whole['setting']} seed {whole['seed']}: whole budget → {whole['pick']} "
            f"(delivered {whole['scores'][METRIC]:.3f})"
            + "".join(f"; {label} → {_pick(row)}" for label, row in ran)
            + "."
        )
    return lines


def _pick(row: dict) -> str:
    stop = row.get("stopped")
    return (
        f"{row['pick']} (delivered {row['scores'][METRIC]:.3f}; "
        + (f"stopped after {row['trials_run']} trials: {stop}" if stop else "no early stop")
        + ")"
    )


def _over(pairs, key: str) -> list[tuple[str, float]]:
    return [(_cluster(w), regret_of(w)[key]) for w, _ in pairs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--problems", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=[WHOLE, DEFAULT, *CANDIDATES])
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    parser.add_argument(
        "--add", action="store_true", help="add these rows to the saved ones (same budget)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=PATH,
        help="the JSON to write; another than the default one publishes no section (the "
        "searches benchmarks/pruner_replay.py replays go to pruner_replay_searches.json)",
    )
    args = parser.parse_args(argv)
    if not args.render:
        save = saver(args.results, args, "benchmarks/image_searches.py", argv)
        measure(args, None, save, regret=True)
    if args.results == PATH:
        publish("image-searches", PATH, render, summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
