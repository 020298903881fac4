"""The efficacy section of BENCHMARKS.md: clustered paired comparisons and the regret analysis.

Every comparison is paired (the same problem, seed and objective) and its interval is
clustered on the base dataset: the mean of each base's mean difference, with a Student t
interval over the bases (``bases - 1`` degrees of freedom), because problems cut from one
dataset, and seeds of one problem, are not independent. Where a group has a single base the
interval falls back to the problem × seed pairs and is marked ``†``. A goal is **met** only
when its interval's lower end clears it, **missed** when the upper end is below it, and
otherwise **not shown**.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from efficacy_data import BY_NAME, MODELS
from sections import git, write_section

RESULTS = Path(__file__).resolve().parent / "results"
TIE = 0.005  # |difference| below half a point counts as a tie
GAP = 0.01  # an oracle gap over the incumbent worth capturing: one point (#26)
CAPTURE = 0.5  # the share of it the pick should capture
PICK = "lossearch"
ROLES = ("development", "confirmation")


# -- statistics -------------------------------------------------------------------------------


def _t(n: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with n - 1 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1)) if n > 1 else float("nan")


def clustered(pairs: list[tuple[str, float]], level: float = 0.95) -> dict:
    """``pairs`` of (base dataset, paired difference): the mean over bases of each base's
    mean, its t-interval (``level``) over the bases (over the pairs when there is one base),
    and win / tie / loss counts of the pairs."""
    by_base = defaultdict(list)
    for base, value in pairs:
        by_base[base].append(value)
    units = [statistics.mean(v) for v in by_base.values()]
    one_base = len(units) < 2
    if one_base:
        units = [value for _, value in pairs]
    mean = statistics.mean(units)
    half = (
        _t(len(units), level) * statistics.stdev(units) / math.sqrt(len(units))
        if len(units) > 1
        else math.nan
    )
    values = [v for _, v in pairs]
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "bases": len(by_base),
        "n": len(values),
        "one_base": one_base,
        "wins": sum(v > TIE for v in values),
        "ties": sum(abs(v) <= TIE for v in values),
        "losses": sum(v < -TIE for v in values),
    }


def equivalent(pairs: list[tuple[str, float]], margin: float = TIE) -> tuple[dict, str]:
    """Two one-sided tests at 5% each: the clustered 90% interval, and **equal** when it lies
    inside ``±margin``, **different** when it lies wholly outside, else **not shown**."""
    stat = clustered(pairs, level=0.90)
    if math.isnan(stat["low"]):
        return stat, "not shown"
    if -margin < stat["low"] and stat["high"] < margin:
        return stat, "equal"
    outside = stat["low"] >= margin or stat["high"] <= -margin
    return stat, "different" if outside else "not shown"


def verdict(stat: dict, bar: float = 0.0) -> str:
    if math.isnan(stat["low"]):
        return "not shown"
    if stat["low"] > bar:
        return "met"
    return "missed" if stat["high"] < bar else "not shown"


def _points(stat: dict, key="mean") -> str:
    return f"{stat[key] * 100:+.2f}"


def _interval(stat: dict) -> str:
    if math.isnan(stat["low"]):
        return "n/a"
    mark = "†" if stat["one_base"] else ""
    return f"[{_points(stat, 'low')}, {_points(stat, 'high')}]{mark}"


# -- reading the rows -------------------------------------------------------------------------


def incumbent_of(task: str, objective: str) -> str:
    """The recipe lossearch declares before any score is seen (its selection's rule)."""
    from lossearch.metrics import OBJECTIVES

    averaged = OBJECTIVES[objective].class_averaged
    return "recipe:logit_adjusted" if task == "multiclass" and averaged else "recipe:ce_baseline"


class Runs:
    """The saved rows, looked up by (problem, seed, method, objective)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.by_key = {}
        for r in rows:
            self.by_key[(r["setting"], r["seed"], r["method"], r.get("objective"))] = r

    def score(self, problem, seed, method, objective, raw=False):
        """The test value of ``objective`` for a method (recipes are objective-free)."""
        if method.endswith(" (no decision)"):
            method, raw = method[: -len(" (no decision)")], True
        searched = method not in ("ce+class_weight",) and not method.startswith("recipe:")
        row = self.by_key.get((problem, seed, method, objective if searched else None))
        if row is None:
            return None
        scores = row.get("scores_without_decision") if raw else row["scores"]
        return None if scores is None else scores.get(objective)

    def cases(self, role: str, task: str, objective: str, model: str | None = None):
        """``(problem, base, seed)`` of every search of this kind that lossearch ran."""
        out = []
        for r in self.rows:
            problem = BY_NAME.get(r["setting"])
            if problem is None or r["method"] != PICK or r.get("objective") != objective:
                continue
            if problem.role == role and problem.task == task and model in (None, problem.model):
                out.append((r["setting"], problem.cluster(r["seed"]), r["seed"]))
        return sorted(out)

    def recipes(self, task: str) -> list[str]:
        return sorted(
            {
                r["method"]
                for r in self.rows
                if r["method"].startswith("recipe:") and r["task"] == task
            }
        )

    def paired(self, cases, a, b, objective) -> list[tuple[str, float]]:
        """``(base, a - b)`` over the cases where both were measured (the comparison searches
        run on each problem's first seed only; the tables give the number of pairs)."""
        pairs = []
        for problem, base, seed in cases:
            x, y = self.score(problem, seed, a, objective), self.score(problem, seed, b, objective)
            if x is not None and y is not None:
                pairs.append((base, x - y))
        return pairs

    def best_in_hindsight(self, cases, task, objective) -> str | None:
        """The recipe with the best mean test score over these cases (chosen on test)."""
        scored = []
        for recipe in self.recipes(task):
            values = [self.score(p, s, recipe, objective) for p, _, s in cases]
            if all(v is not None for v in values) and values:
                scored.append((statistics.mean(values), recipe))
        return max(scored)[1] if scored else None


# -- the comparisons ---------------------------------------------------------------------------


def comparisons(runs: Runs, cases, task, objective) -> list[tuple[str, str, str]]:
    """``(label, a, b)`` rows: a - b, each difference measured alone where it can be."""
    incumbent = incumbent_of(task, objective)
    best = runs.best_in_hindsight(cases, task, objective)
    rows = [
        (f"lossearch − recipe to beat (`{incumbent}`, declared in advance)", PICK, incumbent),
        (f"lossearch − best recipe in hindsight (`{best}`)", PICK, best),
        ("search value: lossearch − recipes + decision rule, no search", PICK, "recipes_only"),
        ("robust selection: lossearch − the same loop, top trial", PICK, "optuna_like_for_like"),
        (
            "lossearch's loop (scoring, recipes, decision, pruner) − Optuna by hand",
            "optuna_like_for_like",
            "optuna_by_hand",
        ),
        ("lossearch − Optuna by hand (what a user writes)", PICK, "optuna_by_hand"),
        ("decision rule: lossearch − its refit model without it", PICK, f"{PICK} (no decision)"),
    ]
    if task == "binary":
        rows.append(("lossearch − CE with class_weight balanced", PICK, "ce+class_weight"))
    return [row for row in rows if row[2] is not None]


@dataclass(frozen=True)
class Goal:
    """One judged goal: for the detail's list and the summary's table."""

    role: str
    setting: str  # "multiclass (MLP) balanced_accuracy"
    name: str  # one of GOAL_NAMES
    figure: str  # "+1.19 points [-0.93, +3.31]"
    verdict: str

    def line(self) -> str:
        where = f"{self.role}, {self.setting}"
        return f"- {where}: lossearch {self.name}: {self.figure} → **{self.verdict}**."


GOAL_NAMES = (
    "≥ the recipe to beat",
    "more than the recipes alone",
    "no problem more than 0.5 points below the recipe to beat (mean over seeds)",
)


def goals_table(goals: list[Goal]) -> list[str]:
    """The goals as one row per role and setting (the summary in BENCHMARKS.md)."""
    lines = [
        "| role | setting, objective | pick − recipe to beat | pick − recipes alone "
        "| worst problem − recipe to beat |",
        "|---|---|---|---|---|",
    ]
    rows: dict[tuple[str, str], dict[str, Goal]] = defaultdict(dict)
    for goal in goals:
        rows[goal.role, goal.setting][goal.name] = goal
    for (role, setting), found in rows.items():
        cells = [
            f"{found[n].figure.replace(' points', '')}: **{found[n].verdict}**"
            if n in found
            else "–"
            for n in GOAL_NAMES
        ]
        lines.append(f"| {role} | {setting} | " + " | ".join(cells) + " |")
    return lines


def comparison_table(runs: Runs, role, model, task, objective, goals: list[Goal]) -> list[str]:
    cases = runs.cases(role, task, objective, model=model)
    if not cases:
        return []
    setting = f"{task} ({model.upper()})"
    lines = [
        f"#### {role}: {setting}, test {objective}",
        "",
        f"{len(cases)} searches on {len({c[0] for c in cases})} problems from "
        f"{len({c[1] for c in cases})} base datasets. Points of test {objective}; interval "
        "clustered on the base dataset; win / tie / loss over the pairs (tie: within 0.5). The "
        "comparison searches (recipes alone, the two Optuna loops) ran on each problem's first "
        "seed only.",
        "",
        "| comparison | pairs | mean | 95% interval | win / tie / loss |",
        "|---|---|---|---|---|",
    ]
    done = set()
    for label, a, b in comparisons(runs, cases, task, objective):
        pairs = runs.paired(cases, a, b, objective)
        if not pairs:
            continue
        stat = clustered(pairs)
        lines.append(
            f"| {label} | {stat['n']} | {_points(stat)} | {_interval(stat)} | "
            f"{stat['wins']} / {stat['ties']} / {stat['losses']} |"
        )
        # the best recipe in hindsight may be the incumbent: one goal line per comparison
        if a == PICK and b in ("recipes_only", incumbent_of(task, objective)) and b not in done:
            done.add(b)
            name = GOAL_NAMES[1] if b == "recipes_only" else GOAL_NAMES[0]
            figure = f"{_points(stat)} points {_interval(stat)}"
            goals.append(Goal(role, f"{setting} {objective}", name, figure, verdict(stat)))
    lines.append("")
    lines += _per_problem(runs, cases, task, setting, objective, goals, role)
    return lines


def _per_problem(runs, cases, task, setting, objective, goals, role) -> list[str]:
    incumbent = incumbent_of(task, objective)
    methods = [PICK, "recipes_only", "optuna_like_for_like", "optuna_by_hand", incumbent]
    problems = sorted({c[0] for c in cases})
    lines = [
        "| problem | "
        + " | ".join(m.replace("recipe:", "") for m in methods)
        + " | lossearch − recipe to beat |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    worst = None
    for problem in problems:
        seeds = [s for p, _, s in cases if p == problem]
        cells = []
        for m in methods:
            values = [runs.score(problem, s, m, objective) for s in seeds]
            values = [v for v in values if v is not None]
            cells.append(f"{statistics.mean(values):.3f}" if values else "–")
        diffs = [
            runs.score(problem, s, PICK, objective) - runs.score(problem, s, incumbent, objective)
            for s in seeds
            if runs.score(problem, s, incumbent, objective) is not None
        ]
        if not diffs:
            lines.append(f"| {problem} | " + " | ".join(cells) + " | – |")
            continue
        gap = statistics.mean(diffs) * 100
        worst = gap if worst is None or gap < worst else worst
        lines.append(f"| {problem} | " + " | ".join(cells) + f" | {gap:+.2f} |")
    if worst is not None:
        state = "met" if worst >= -0.5 else "missed"
        goals.append(Goal(role, f"{setting} {objective}", GOAL_NAMES[2], f"{worst:+.2f}", state))
    return lines + [""]


# -- the regret analysis -----------------------------------------------------------------------


def regret_cases(runs: Runs) -> dict[tuple, list[dict]]:
    """Searches with a regret analysis, grouped by (role, model, task, objective)."""
    groups = defaultdict(list)
    for r in runs.rows:
        problem = BY_NAME.get(r["setting"])
        if problem is None or r["method"] != PICK or not r.get("regret"):
            continue
        groups[(problem.role, problem.model, problem.task, r["objective"])].append(
            {**_regret_of(r, r["objective"], problem.task), "base": problem.cluster(r["seed"])}
        )
    return groups


def _regret_of(row: dict, objective: str, task: str) -> dict:
    """One search: the oracle gap, how a searched config fares against the recipes, how
    validation ranked the configs against test, and the best config and the pick against
    the incumbent recipe (retrained like the others)."""
    from scipy.stats import spearmanr

    configs = row["regret"]
    test = {c["trial"]: c["test"][objective] for c in configs}
    pick = next(c for c in configs if c["chosen"])["trial"]
    recipes = [test[c["trial"]] for c in configs if c["recipe"]]
    sampled = [test[c["trial"]] for c in configs if not c["recipe"]]
    oracle = max(test.values())
    values = [c["value"] for c in configs]
    rho = (
        spearmanr(values, [test[c["trial"]] for c in configs]).statistic
        if len(configs) > 2
        else math.nan
    )
    declared = incumbent_of(task, objective).removeprefix("recipe:")
    incumbent = next((test[c["trial"]] for c in configs if c["recipe"] == declared), None)
    return {
        "gap": oracle - test[pick],
        "over_incumbent": None if incumbent is None else oracle - incumbent,
        "captured": None if incumbent is None else test[pick] - incumbent,
        "sampled_over_recipes": (max(sampled) - max(recipes)) if sampled and recipes else None,
        "pick_best": test[pick] >= oracle - TIE,
        "pick_sampled": not next(c for c in configs if c["chosen"])["recipe"],
        "rho": rho,
    }


def regret_table(runs: Runs) -> list[str]:
    groups = regret_cases(runs)
    if not groups:
        return []
    lines = [
        "### Where choosing the loss pays: the regret analysis",
        "",
        "For each lossearch search, its top trials by validation, every recipe trial and the "
        "pick are retrained on the whole pool (the benchmark's seed) and scored on test under "
        "their own tuned decision rule. **Oracle gap**: the best of them on test minus the "
        "pick. **Sampled − recipes**: the best searched (non-recipe) config minus the best "
        "recipe, on test: whether any searched config beats the recipes at all. ρ: Spearman "
        "correlation of validation and test scores over those configs. Points; intervals "
        "clustered on the base dataset (†: one base, over its searches).",
        "",
        "| role | setting | objective | searches | oracle gap | sampled − recipes | can the "
        "search pay? | pick is the best | pick is a sampled config | mean ρ |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (role, model, task, objective), cases in sorted(groups.items()):
        gap = clustered([(c["base"], c["gap"]) for c in cases])
        beats = [
            (c["base"], c["sampled_over_recipes"])
            for c in cases
            if c["sampled_over_recipes"] is not None
        ]
        beat = clustered(beats) if beats else None
        pays = (
            "–" if beat is None else {"met": "yes", "missed": "no"}.get(verdict(beat), "not shown")
        )
        rhos = [c["rho"] for c in cases if not math.isnan(c["rho"])]
        lines.append(
            f"| {role} | {model} {task} | {objective} | {len(cases)} | {_points(gap)} "
            f"{_interval(gap)} | "
            + ("–" if beat is None else f"{_points(beat)} {_interval(beat)}")
            + f" | {pays} | {sum(c['pick_best'] for c in cases)} / {len(cases)} | "
            f"{sum(c['pick_sampled'] for c in cases)} / {len(cases)} | "
            f"{statistics.mean(rhos) if rhos else float('nan'):+.2f} |"
        )
    return lines + ["", *capture_lines(groups), ""]


def capture_lines(groups) -> list[str]:
    """Per role: over the searches whose best config beat the recipe to beat by at least
    ``GAP`` on test, how much of that gap the pick captured (pick - incumbent), and the goal
    that it captures at least ``CAPTURE`` of it: captured - CAPTURE x gap > 0, clustered."""
    lines = [
        f"**Capture**: over the searches whose best config beat the recipe to beat by "
        f"at least {GAP * 100:g} point on test (oracle − recipe to beat, both retrained as above), "
        f"the pick's gain over the recipe to beat; the goal: at least {CAPTURE:g} of the gap "
        f"(captured − {CAPTURE:g} × gap above 0, clustered on the base dataset).",
        "",
    ]
    for role in ROLES:
        worth = [
            c
            for (r, *_), cases in groups.items()
            if r == role
            for c in cases
            if c["over_incumbent"] is not None and c["over_incumbent"] >= GAP
        ]
        if not worth:
            continue
        gap = statistics.mean(c["over_incumbent"] for c in worth)
        captured = statistics.mean(c["captured"] for c in worth)
        stat = clustered(
            [(c["base"], c["captured"] - CAPTURE * c["over_incumbent"]) for c in worth]
        )
        bases = len({c["base"] for c in worth})
        lines.append(
            f"- {role}: {len(worth)} searches ({bases} base datasets, every objective) with a "
            f"gap ≥ {GAP * 100:g} point, mean {gap * 100:.2f} points; the pick captured "
            f"{captured * 100:+.2f} points ({captured / gap:.0%}); captured − {CAPTURE:g} × gap "
            f"{_points(stat)} {_interval(stat)} → **{verdict(stat)}**."
        )
    return lines


# -- an ensemble of the confirmed candidates ----------------------------------------------------

# judged where raw probabilities are a fair reading of both sides: ranking objectives, and
# multiclass ones (the logit-adjusted incumbent is balanced at its arg-max); a threshold
# objective with a plain-CE incumbent at 0.5 would favour the re-weighted candidates
RANKING = ("pr_auc", "macro_pr_auc")


def ensemble_table(runs: Runs) -> list[str]:
    """Per role and setting: the confirmed candidates' ensemble minus a seed ensemble of the
    incumbent of the same size (``efficacy.ensemble_check``), and whether ``ensemble=`` has
    earned its place: shipped only if the confirmation problems' interval is above 0."""
    groups = defaultdict(list)
    for r in runs.rows:
        problem, check = BY_NAME.get(r["setting"]), r.get("ensemble")
        if problem is None or r["method"] != PICK or not check:
            continue
        objective = r["objective"]
        diff = check["test"][objective] - check["seed_ensemble_test"][objective]
        key = (problem.role, problem.model, problem.task, objective)
        groups[key].append((problem.cluster(r["seed"]), diff, len(check["members"])))
    if not groups:
        return []
    lines = [
        "### An ensemble of the confirmed candidates",
        "",
        "Each search's confirmed candidates (the models a search trains anyway), retrained on "
        "the pool as in the regret analysis and their probabilities averaged, against the "
        "recipe to beat retrained on as many seeds and averaged; raw probabilities, the search's "
        "objective on test. Judged on ranking objectives and multiclass ones only (raw "
        "probabilities are a fair reading of both sides there). Points; intervals clustered "
        "on the base dataset.",
        "",
        "| role | setting | objective | searches | members (mean) | ensemble − seed "
        "ensemble | judged |",
        "|---|---|---|---|---|---|---|",
    ]
    judged = defaultdict(list)
    for (role, model, task, objective), cases in sorted(groups.items()):
        stat = clustered([(base, diff) for base, diff, _ in cases])
        fair = objective in RANKING or task == "multiclass"
        if fair:
            judged[role] += [(base, diff) for base, diff, _ in cases]
        members = statistics.mean(n for *_, n in cases)
        lines.append(
            f"| {role} | {model} {task} | {objective} | {len(cases)} | {members:.1f} | "
            f"{_points(stat)} {_interval(stat)} | {'yes' if fair else 'no'} |"
        )
    lines.append("")
    for role in ROLES:
        if judged[role]:
            stat = clustered(judged[role])
            lines.append(
                f"- {role}, every judged search: ensemble − seed ensemble {_points(stat)} "
                f"{_interval(stat)} → above 0: **{verdict(stat)}**"
                + (" (ship `ensemble=` only if met)" if role == "confirmation" else "")
                + "."
            )
    return lines + [""]


# -- time and the page ---------------------------------------------------------------------------


def time_table(runs: Runs) -> list[str]:
    seconds = defaultdict(list)
    for r in runs.rows:
        if r["method"] in (PICK, "recipes_only", "optuna_by_hand", "optuna_like_for_like"):
            seconds[r["method"]].append(r["seconds"])
    if "optuna_by_hand" not in seconds:
        return []
    by_hand = statistics.mean(seconds["optuna_by_hand"])
    lines = [
        "#### Wall time of a search (search, confirmation, refit; not the regret retraining)",
        "",
        "Two processes of one thread shared the 2 cores; every search method of every problem "
        "and objective is counted, so the means mix problems (time to the final pick is "
        "measured alone in its own section).",
        "",
        "| method | searches | mean seconds | ratio to Optuna by hand |",
        "|---|---|---|---|",
    ]
    for method, values in seconds.items():
        mean = statistics.mean(values)
        lines.append(f"| {method} | {len(values)} | {mean:.1f} | {mean / by_hand:.2f}× |")
    return lines + [""]


def problems_table(runs: Runs) -> list[str]:
    lines = [
        "| problem | base | role | task | model | objectives searched | training counts (seed 0) |",
        "|---|---|---|---|---|---|---|",
    ]
    counts = {r["setting"]: r["counts"] for r in runs.rows if r["seed"] == 0}
    seen = {r["setting"] for r in runs.rows}
    for name, p in BY_NAME.items():
        if name in seen:
            lines.append(
                f"| {name} | {p.base} | {p.role} | {p.task} | {p.model} | "
                f"{', '.join(p.objectives)} | {counts.get(name, '–')} |"
            )
    return lines + [""]


def picks_line(runs: Runs) -> str:
    picks = [r for r in runs.rows if r["method"] == PICK]
    sampled = sum(1 for r in picks if r.get("pick_recipe") is None)
    incumbent = sum(
        1
        for r in picks
        if r.get("pick_recipe")
        and f"recipe:{r['pick_recipe']}" == incumbent_of(r["task"], r["objective"])
    )
    return (
        f"Of {len(picks)} lossearch picks, {incumbent} are the declared recipe to beat, "
        f"{len(picks) - sampled - incumbent} another recipe and {sampled} a sampled config."
    )


def _dates(rows) -> str:
    """When the rows were measured: their own dates (recorded since 2026-12-03); for earlier
    rows, on or after the date of the commit that measured them."""
    dates = {r["date"] for r in rows if r.get("date")}
    undated = {str(r.get("commit", "")).rstrip("+") for r in rows if not r.get("date")}
    committed = {_commit_date(c) for c in undated if c}
    text = " and ".join(sorted(dates))
    if committed:
        since = f"on or after {' and '.join(sorted(committed))} (the commits' dates)"
        text = f"{text}, and {since}" if text else since
    return text


def _commit_date(commit: str) -> str:
    return git("show", "-s", "--format=%cs", commit).strip() or f"commit {commit}'s date (unknown)"


def judged(runs: Runs) -> tuple[list[Goal], list[str]]:
    """Every goal, and the per-setting comparison tables they come from."""
    rows = runs.rows
    goals: list[Goal] = []
    body: list[str] = []
    for role in ROLES:
        sections = []
        for model in MODELS:
            for task in ("multiclass", "binary", "multilabel"):
                objectives = sorted(
                    {
                        r["objective"]
                        for r in rows
                        if r["method"] == PICK
                        and r["task"] == task
                        and BY_NAME[r["setting"]].role == role
                        and BY_NAME[r["setting"]].model == model
                    }
                )
                for objective in objectives:
                    sections += comparison_table(runs, role, model, task, objective, goals)
        if sections:
            body += [f"### {role.capitalize()} problems", "", *sections]
    return goals, body


def summarize(rows) -> str:
    """The goals in one table, the picks and the capture: the section in BENCHMARKS.md."""
    runs = Runs(rows)
    goals, _ = judged(runs)
    commits = sorted({str(r.get("commit")) for r in rows})
    problems = {r["setting"] for r in rows}
    roles = {role: sum(BY_NAME[p].role == role for p in problems) for role in ROLES}
    bases = len({BY_NAME[p].base for p in problems})
    capture = capture_lines(regret_cases(runs))[2:]
    return "\n".join(
        [
            f"Measured {_dates(rows)} on commit {', '.join(commits)} (`make benchmark-efficacy`): "
            f"{len(problems)} problems ({roles['development']} development, "
            f"{roles['confirmation']} confirmation) from {bases} base datasets, seeds "
            f"{', '.join(map(str, sorted({r['seed'] for r in rows})))}; test points, intervals "
            "clustered on the base dataset (†: one base).",
            "",
            *goals_table(goals),
            "",
            f"- {picks_line(runs)}",
            *(line.replace("- ", "- Capture, ", 1) for line in capture),
        ]
    )


def render(rows, args) -> str:
    import keras
    import optuna

    runs = Runs(rows)
    goals, body = judged(runs)
    budget = args.budget["mlp"]
    commits = sorted({str(r.get("commit")) for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "## Efficacy: the pick against fixed recipes on data the search never saw"
        + (" (`--quick` smoke run)" if args.quick else ""),
        "",
        f"Measured {_dates(rows)} on commit {', '.join(commits)}"
        + (
            " (`+`: a file under `lossearch/` or `benchmarks/` differed from the commit when "
            "the run started)"
            if any(c.endswith("+") for c in commits)
            else ""
        )
        + " with "
        f"`make benchmark-efficacy{'-quick' if args.quick else ''}` (`benchmarks/efficacy.py"
        f"{' --quick' if args.quick else ''}`) on {platform.machine()}, {os.cpu_count()} cores, "
        f"CPU only, {args.jobs} processes of one thread, Keras {keras.__version__}, Optuna "
        f"{optuna.__version__}. Every method: {budget['epochs']} epochs, batch "
        f"{budget['batch_size']}; searches {budget['n_trials']} trials; seeds "
        f"{', '.join(map(str, seeds))}. An MLP (64 hidden units) on vectors, a small CNN (two "
        "3×3 convolutions, 16 and 32 filters) on the digit images. lossearch runs its "
        "defaults (`cv='auto'`, successive halving, robust selection, the decision rule, the "
        "refit). Methods and problems: `benchmarks/efficacy.py` and `efficacy_data.py`. "
        "Development problems are those defaults may have been chosen on; confirmation "
        "problems are reported only and no default was tuned on them.",
        "",
        *problems_table(runs),
        "### Goals",
        "",
        "A goal is met only when the interval's lower end clears it (clustered on the base "
        "dataset); otherwise it is not shown.",
        "",
        *(goal.line() for goal in goals),
        "",
        picks_line(runs),
        "",
        *regret_table(runs),
        *ensemble_table(runs),
        *body,
        *time_table(runs),
    ]
    return "\n".join(lines)


def render_and_write(rows, args) -> None:
    summary = summarize(rows)
    write_section("efficacy-quick" if args.quick else "efficacy", render(rows, args), summary)
    print(summary)
