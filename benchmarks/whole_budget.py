"""Is there a winner to find? Whole-budget searches, unpruned, on development problems.

The early stop ends a search once its sampled trials show no contender, and successive
halving ends most sampled trials after an epoch or four. Both are right only where no
sampled configuration beats the recipes. This measures that directly: per (problem, seed),
lossearch with its whole trial budget (``early_stop=False``) and no pruner, so that every
sampled configuration trains every epoch; then efficacy's regret analysis retrains its top
trials by validation, every recipe and its pick on the whole pool (the benchmark's seed) and
scores them on test. Reported per search: the best sampled configuration on test against the
best recipe and the incumbent, where it ranked on validation, and what the whole-budget
search picked.

Run: .venv/bin/python benchmarks/whole_budget.py [--trials 60] [--epochs 20] [--seeds 0 1]
     [--jobs 2]   (`--render` rewrites the section from the saved JSON)
"""

from __future__ import annotations

import argparse
import json
import sys

from efficacy_data import BY_NAME
from efficacy_report import clustered
from sections import publish
from time_to_pick import (
    METRIC,
    PROBLEMS,
    RESULTS,
    commits,
    interval,
    measure,
    paired,
    same_picks,
    saver,
)

METHOD = "lossearch_whole_budget"


# -- the section ------------------------------------------------------------------------------


def search_figures(row: dict) -> dict:
    """One search's figures, test points against the incumbent and the best recipe."""
    metric = METRIC[row["task"]]
    incumbent = next(c["trial"] for c in row["confirmation"] if "incumbent" in c["role"])
    retrained = {r["trial"]: r for r in row["regret"]}
    test = {n: r["test"][metric] for n, r in retrained.items()}
    recipes = [n for n, r in retrained.items() if r["recipe"]]
    sampled = [n for n, r in retrained.items() if not r["recipe"]]
    best = max(sampled, key=test.get)
    by_validation = sorted(retrained, key=lambda n: retrained[n]["value"], reverse=True)
    chosen = next(n for n, r in retrained.items() if r["chosen"])
    return {
        "sampled_vs_recipes": test[best] - max(test[n] for n in recipes),
        "sampled_vs_incumbent": test[best] - test[incumbent],
        "best_rank": by_validation.index(best) + 1,
        "best_validation_gain": retrained[best]["value"] - retrained[incumbent]["value"],
        "pick_vs_incumbent": test[chosen] - test[incumbent],
        "pick_is_sampled": not retrained[chosen]["recipe"],
        "sampled_retrained": len(sampled),
    }


def _defaults(meta: dict) -> list[dict]:
    """The default search's rows of ``time_to_pick.json`` at the same budget: what the early
    stop and the pruner picked on the same data."""
    path = RESULTS / "time_to_pick.json"
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    if (saved["meta"]["trials"], saved["meta"]["epochs"]) != (meta["trials"], meta["epochs"]):
        return []
    return [r for r in saved["rows"] if r["method"] == "lossearch"]


def _against_default(rows: list[dict], defaults: list[dict]) -> list[str]:
    """The whole-budget pick against the default search's on test, where both ran."""
    both = rows + defaults
    _, diff = paired(both, "development", "lossearch", ours=METHOD)
    if diff is None:
        return []
    same, n, _ = same_picks(both, "development", "lossearch", ours=METHOD)
    ours = [r["seconds"] for r in rows]
    theirs = [r["seconds"] for r in defaults if (r["setting"], r["seed"]) in _keys(rows)]
    return [
        f"- whole-budget pick − the default search's pick (early stop, successive halving; "
        f"`time_to_pick.json`, commit {commits(defaults)}): {diff['mean'] * 100:+.2f} points "
        f"{interval(diff, 100, '{:+.2f}')}; the same pick in {same} of {n} searches. Wall "
        f"time {min(ours):.0f}–{max(ours):.0f} s against {min(theirs):.0f}–{max(theirs):.0f} s "
        "(separate runs, not side by side)."
    ]


def _keys(rows: list[dict]) -> set[tuple]:
    return {(r["setting"], r["seed"]) for r in rows}


def _points(value: float) -> str:
    return f"{value * 100:+.2f}"


def render(saved: dict) -> str:
    rows, meta = saved["rows"], saved["meta"]
    lines = [
        "## Is there a winner to find? Whole-budget searches, unpruned",
        "",
        f"Measured {saved['date']} with `benchmarks/whole_budget.py` on {meta['machine']}: "
        f"{meta['trials']} trials of {meta['epochs']} epochs, `early_stop=False`, no pruner "
        f"(every sampled configuration trains every epoch), the other defaults; code "
        f"{meta['commit']}, {meta.get('command', '`benchmarks/whole_budget.py`')}, "
        f"{meta['layout']}. Development problems only. The top trials by validation, every "
        "recipe and the pick are retrained on the whole pool and scored on test (efficacy's "
        "regret analysis; test: balanced accuracy or PR-AUC). "
        "Best sampled: the best of the retrained sampled (non-recipe) configurations on test, "
        "a maximum of single test runs over more draws than the recipes get, so biased "
        "upwards. Points.",
        "",
        "| problem | seed | sampled retrained | best sampled − best recipe | best sampled − "
        "recipe to beat | its rank by validation (of those retrained) | its validation gain | "
        "whole-budget pick − recipe to beat | pick sampled? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = search_figures(row)
        lines.append(
            f"| {row['setting']} | {row['seed']} | {s['sampled_retrained']} | "
            f"{_points(s['sampled_vs_recipes'])} | {_points(s['sampled_vs_incumbent'])} | "
            f"{s['best_rank']} | {_points(s['best_validation_gain'])} | "
            f"{_points(s['pick_vs_incumbent'])} | {'yes' if s['pick_is_sampled'] else 'no'} |"
        )
    lines += ["", "Over the searches (intervals: 95%, clustered on the base dataset):", ""]
    return "\n".join(lines + over_searches(saved)) + "\n"


def over_searches(saved: dict) -> list[str]:
    """The clustered means over every search, and the whole budget against the default."""
    rows = saved["rows"]
    per = [(BY_NAME[r["setting"]].cluster(r["seed"]), search_figures(r)) for r in rows]
    lines = []
    for key, label in (
        ("sampled_vs_recipes", "best sampled − best recipe"),
        ("sampled_vs_incumbent", "best sampled − recipe to beat"),
        ("pick_vs_incumbent", "whole-budget pick − recipe to beat"),
    ):
        stat = clustered([(base, s[key]) for base, s in per])
        lines.append(
            f"- {label}: {stat['mean'] * 100:+.2f} points {interval(stat, 100, '{:+.2f}')} "
            f"({stat['wins']} above, {stat['losses']} below, {stat['ties']} tied)."
        )
    return lines + _against_default(rows, _defaults(saved["meta"]))


def summarize(saved: dict) -> str:
    meta = saved["meta"]
    return "\n".join(
        [
            f"Measured {saved['date']} on code {meta['commit']} (`benchmarks/whole_budget.py`): "
            f"{len(saved['rows'])} development searches of {meta['trials']} trials × "
            f"{meta['epochs']} epochs, no early stop, no pruner; test points.",
            "",
            *over_searches(saved),
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args(argv)
    path = RESULTS / "whole_budget.json"
    if not args.render:
        args.methods = [METHOD]
        measure(args, None, saver(path, args, "benchmarks/whole_budget.py", argv), regret=True)
    publish("whole-budget", path, render, summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
