"""Which recipe to beat: each objective's declared recipe against the others, replayed.

The robust selection declares, before any score, the recipe a searched loss must beat (logit
adjustment for a class-averaged multiclass objective, else plain CE:
``lossearch.selection.roles``). Every lossearch search in ``results/efficacy_runs.jsonl``
retrained every recipe of its space on the whole pool and scored it on test under its own
tuned decision rule (the regret analysis), so each recipe's paired difference to the declared
one is on record, per search; no training runs here.

The rule (written after the efficacy runs, so this is a replay of recorded searches, not a
fresh test): for a task and objective, another recipe replaces the declared one when its
development gain over it, clustered on the base dataset over at least ``MIN_BASES`` bases
(four degrees of freedom), has a lower end above 0, and the confirmation problems agree
(their mean gain above 0); of several, the one with the highest development lower end. The
candidates named before: an inverse-weighted CE for macro F1, a re-weighted BCE for
multi-label.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

from efficacy_data import BY_NAME
from efficacy_report import PICK, RESULTS, clustered, incumbent_of
from sections import results_stamp, write_section

RUNS = RESULTS / "efficacy_runs.jsonl"
MIN_BASES = 5  # a clustered interval with four degrees of freedom at least


def searches(rows: list[dict]) -> list[dict]:
    """The lossearch searches with the regret retraining of every recipe."""
    return [r for r in rows if r["method"] == PICK and r.get("regret") and r["setting"] in BY_NAME]


def gains(rows: list[dict]) -> dict[tuple, dict[str, dict[str, list]]]:
    """``{(task, objective): {recipe: {role: [(cluster, recipe − declared on test)]}}}``."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in searches(rows):
        problem = BY_NAME[row["setting"]]
        objective = row["objective"]
        declared = incumbent_of(row["task"], objective).removeprefix("recipe:")
        tests = {c["recipe"]: c["test"][objective] for c in row["regret"] if c["recipe"]}
        if declared not in tests:
            continue
        for recipe, score in tests.items():
            if recipe != declared:
                pair = (problem.cluster(row["seed"]), score - tests[declared])
                out[(row["task"], objective)][recipe][problem.role].append(pair)
    return out


def decided(per_role: dict[str, list]) -> tuple[dict, dict | None, bool]:
    """The development and confirmation statistics of one recipe, and the rule's answer."""
    development = clustered(per_role["development"]) if per_role["development"] else None
    confirmation = clustered(per_role["confirmation"]) if per_role["confirmation"] else None
    shown = development is not None and development["low"] > 0
    enough = development is not None and development["bases"] >= MIN_BASES
    agrees = confirmation is not None and confirmation["mean"] > 0
    return development, confirmation, shown and enough and agrees


def _cell(stat: dict | None) -> str:
    if stat is None:
        return "–"
    mark = "†" if stat["one_base"] else ""
    return (
        f"{stat['mean'] * 100:+.2f} [{stat['low'] * 100:+.2f}, {stat['high'] * 100:+.2f}]{mark} "
        f"({stat['n']} / {stat['bases']})"
    )


def table(rows: list[dict]) -> tuple[list[str], list[str]]:
    """The detail's rows and the replacements the rule makes."""
    lines = [
        "| task, objective | declared | recipe | development: recipe − declared | "
        "confirmation | replaces it? |",
        "|---|---|---|---|---|---|",
    ]
    changes = []
    for (task, objective), recipes in sorted(gains(rows).items()):
        declared = incumbent_of(task, objective).removeprefix("recipe:")
        passing = []
        for recipe, per_role in sorted(recipes.items()):
            development, confirmation, replace = decided(per_role)
            lines.append(
                f"| {task}, {objective} | {declared} | {recipe} | {_cell(development)} | "
                f"{_cell(confirmation)} | {'**yes**' if replace else 'no'} |"
            )
            if replace:
                passing.append((development["low"], recipe))
        if passing:
            changes.append(f"{task}, {objective}: {max(passing)[1]} replaces {declared}")
    return lines, changes


def render(rows: list[dict]) -> str:
    lines, changes = table(rows)
    commits = ", ".join(sorted({r["commit"] for r in searches(rows)}))
    return "\n".join(
        [
            "## Which recipe to beat: the declared recipes replayed",
            "",
            f"Replayed from the efficacy searches of commits {commits} "
            "(`benchmarks/incumbent_replay.py`, no training): per search, every recipe of its "
            "space retrained on the whole pool and scored on test under its own decision rule, "
            "minus the recipe declared for the task and objective. Points; 95% intervals "
            "clustered on the base dataset (†: one base, over its searches); in brackets the "
            "searches / the base datasets. Rule (written after these runs: a replay, not a "
            f"fresh test): a recipe replaces the declared one when its development interval, "
            f"over at least {MIN_BASES} base datasets, has a lower end above 0 and the "
            "confirmation mean agrees (above 0); of several, the highest lower end.",
            "",
            *lines,
            "",
            "Replaced: " + ("; ".join(changes) if changes else "none; the declared recipes stay."),
        ]
    )


def summarize(rows: list[dict]) -> str:
    _, changes = table(rows)
    found = gains(rows)
    named = [
        ("multiclass", "macro_f1", "inverse_weighted_ce"),
        ("multilabel", "macro_pr_auc", "inverse_weighted_ce"),
    ]
    lines = [
        f"Replayed {results_stamp(RUNS)} over the efficacy searches' regret retrainings "
        "(`benchmarks/incumbent_replay.py`, no training); test points, recipe − declared recipe.",
        "",
    ]
    for task, objective, recipe in named:
        per_role = found.get((task, objective), {}).get(recipe)
        if per_role is None:
            continue
        development, confirmation, _ = decided(per_role)
        lines.append(
            f"- {task} {objective}, {recipe} against the declared recipe: development "
            f"{_cell(development)}, confirmation {_cell(confirmation)}."
        )
    lines.append(
        f"- Replaced under the rule (a development lower end above 0 over ≥ {MIN_BASES} base "
        "datasets, confirmation agreeing): "
        + ("; ".join(changes) if changes else "none; every declared recipe stays.")
    )
    return "\n".join(lines)


def main() -> int:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    write_section("incumbent-replay", render(rows), summarize(rows))
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
