"""Which switch threshold: the robust selection's last step replayed on recorded searches.

The robust selection keeps the declared incumbent unless the best confirmed candidate's gain
exceeds ``Z_CLEAR`` standard errors (``lossearch.selection.confirmation.decide``). Every
lossearch search in ``results/efficacy_runs.jsonl`` recorded what that step saw: each
candidate's confirmed mean and whether it stopped behind the incumbent, the leader's gain and
its standard error (in the verdict's reason), and, for the regret analysis, every candidate
retrained on the whole pool and scored on test. The racing before the choice does not depend
on the threshold, so the pick under threshold z, read from those records, is exactly the
pick a search with z would have made on the same seeds; its test score is that candidate's
regret retraining (one run, the benchmark's seed).

Judged like the rest of the efficacy section: the threshold may be chosen on development
problems only; confirmation problems are reported. The default changes only when another
threshold's development interval (lossearch − incumbent, clustered on the base dataset) has
a lower end at least ``TIE`` above the default's, the same "clearly better" a challenger
needs. No training runs here: ``python benchmarks/selection_replay.py`` takes a second.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict

from efficacy_data import BY_NAME
from efficacy_report import PICK, RESULTS, ROLES, clustered
from sections import results_stamp, write_section

from lossearch._noise import Z_CLEAR

RUNS = RESULTS / "efficacy_runs.jsonl"
THRESHOLDS = (0.0, 0.5, 1.0, 1.28, Z_CLEAR, 2.0, 2.5)
TIE = 0.5  # points: a lower end this much higher counts as clearly better
BIG_GAP = 1.0  # points: an oracle gap worth capturing (the "oracle gap >= 1 point")
VERDICT = re.compile(r"gain ([+-][0-9.]+) of .* standard error ([0-9.]+)")


def _incumbent(row: dict) -> int:
    return next(c["trial"] for c in row["confirmation"] if "incumbent" in c["role"])


def replayed_pick(row: dict, z: float) -> int:
    """The trial one search would have picked under ``z``."""
    confirmed = row["confirmation"]
    # set aside after an early stop (recorded since 2026-12-03): never the leader
    racing = [c for c in confirmed if not (c["stopped"] or c.get("set_aside"))] or confirmed
    leader = max(racing, key=lambda c: c["confirmed_mean"])["trial"]
    if leader == _incumbent(row):
        return leader
    if row.get("gain_se") is not None:  # recorded since 2026-12-02
        gain, se = row["gain"], row["gain_se"]
    else:  # earlier rows: read from the verdict's reason
        verdict = VERDICT.search(row["reason"])
        if verdict is None:  # a reason that names no gain: the incumbent stands
            return _incumbent(row)
        gain, se = float(verdict.group(1)), float(verdict.group(2))
    return leader if gain > z * se else _incumbent(row)


def replayed_gains(row: dict, z: float) -> tuple[float, float]:
    """(pick − incumbent, oracle − incumbent) in test points for one search under ``z``."""
    test = {c["trial"]: 100 * c["test"][row["objective"]] for c in row["regret"]}
    incumbent = test[_incumbent(row)]
    return test[replayed_pick(row, z)] - incumbent, max(test.values()) - incumbent


def searches(rows: list[dict], role: str) -> list[dict]:
    return [
        r
        for r in rows
        if r["method"] == PICK
        and r.get("regret")
        and r.get("confirmation")
        and r["setting"] in BY_NAME
        and BY_NAME[r["setting"]].role == role
    ]


def summarise(rows: list[dict], z: float) -> dict:
    """The paired gain over the incumbent (clustered), the worst problem × objective cell
    (mean over seeds) and the share of big oracle gaps the picks captured."""
    pairs, cells = [], defaultdict(list)
    for r in rows:
        gain, gap = replayed_gains(r, z)
        pairs.append((BY_NAME[r["setting"]].cluster(r["seed"]), gain))
        cells[(r["setting"], r["objective"])].append((gain, gap))
    means = {k: [statistics.mean(col) for col in zip(*v, strict=True)] for k, v in cells.items()}
    big = [m for m in means.values() if m[1] >= BIG_GAP]
    return {
        **clustered(pairs),
        "worst": min(m[0] for m in means.values()),
        "cells": len(means),
        "big_gaps": len(big),
        "captured": sum(m[0] for m in big) / sum(m[1] for m in big) if big else float("nan"),
    }


def choice(table: dict[float, dict]) -> float:
    """The default unless another threshold's development lower end is clearly higher."""
    best = max(table, key=lambda z: table[z]["low"])
    return best if table[best]["low"] >= table[Z_CLEAR]["low"] + TIE else Z_CLEAR


def by_threshold(rows: list[dict]) -> dict[str, dict[float, dict]]:
    """Per role and threshold: the replayed picks' gain over the recipe to beat."""
    found = {role: searches(rows, role) for role in ROLES}
    return {role: {z: summarise(found[role], z) for z in THRESHOLDS} for role in ROLES}


def summarize(rows: list[dict]) -> str:
    by_role = by_threshold(rows)
    chosen = choice(by_role["development"])
    commits = ", ".join(sorted({r["commit"] for r in rows if r["method"] == PICK}))
    gains = "; ".join(
        f"{role} {s['mean']:+.2f} points [{s['low']:+.2f}, {s['high']:+.2f}], worst cell "
        f"{s['worst']:+.2f}"
        for role in ROLES
        for s in [by_role[role][Z_CLEAR]]
    )
    best = max(by_role["development"], key=lambda z: by_role["development"][z]["low"])
    return (
        f"Replayed {results_stamp(RUNS)} over the efficacy searches of commits {commits} "
        "(`benchmarks/selection_replay.py`, no training).\n\n"
        f"- At the default z = {Z_CLEAR:g}, the pick's gain over the recipe to beat: {gains}.\n"
        f"- The best development lower end is z = {best:g}'s "
        f"{by_role['development'][best]['low']:+.2f} against the default's "
        f"{by_role['development'][Z_CLEAR]['low']:+.2f}: "
        + (
            f"**z = {chosen:g} is chosen**."
            if chosen != Z_CLEAR
            else f"within {TIE:g} point, so **the default stays**."
        )
    )


def render(rows: list[dict]) -> str:
    found = {role: searches(rows, role) for role in ROLES}
    by_role = by_threshold(rows)
    chosen = choice(by_role["development"])
    searched = [r for role in ROLES for r in found[role]]
    same = sum(replayed_pick(r, Z_CLEAR) == r["pick_trial"] for r in searched)
    lines = [
        "## Which switch threshold: the selection's last step replayed",
        "",
        "Each recorded lossearch search (`benchmarks/results/efficacy_runs.jsonl`, commits "
        f"{', '.join(sorted({r['commit'] for r in rows if r['method'] == PICK}))}) replayed "
        "under switch thresholds z: the best confirmed candidate replaces the recipe to beat when "
        "its gain exceeds z standard errors. The racing before that step does not depend on z, "
        "so each replayed pick is the one a search with z would have made; its test score is "
        "the regret retraining of that candidate (at the default z the replay picks what "
        f"the search picked in {same} of {len(searched)} searches). Gain over the recipe to beat "
        "in points, interval "
        "clustered on the base dataset; worst: the lowest problem × objective cell (mean over "
        f"seeds); captured: the picks' share of the oracle gaps ≥ {BIG_GAP:g} point (cells "
        "whose best candidate on test beat the recipe to beat by that much; the oracle is a "
        "maximum of single test runs, so part of each gap is test noise no rule can capture). "
        "Generated by `python benchmarks/selection_replay.py` (no training).",
        "",
        "| z | development gain | worst | captured | confirmation gain | worst | captured |",
        "|---|---|---|---|---|---|---|",
    ]
    for z in THRESHOLDS:
        cols = []
        for role in ROLES:
            s = by_role[role][z]
            cols += [
                f"{s['mean']:+.2f} [{s['low']:+.2f}, {s['high']:+.2f}]",
                f"{s['worst']:+.2f}",
                f"{s['captured']:.2f} of {s['big_gaps']}",
            ]
        label = f"**{z:g}** (default)" if z == Z_CLEAR else f"{z:g}"
        lines.append(f"| {label} | " + " | ".join(cols) + " |")
    dev = by_role["development"]
    lines += [
        "",
        f"Development: {dev[Z_CLEAR]['n']} searches in {dev[Z_CLEAR]['cells']} problem × "
        f"objective cells, {dev[Z_CLEAR]['bases']} base datasets. Rule: another z replaces the "
        f"default only when its development lower end is at least {TIE:g} point above the "
        "default's (written after a first look at this grid on both roles, so the confirmation "
        "columns are a replay of recorded searches, not a fresh test). "
        + (
            f"**Chosen: z = {chosen:g}** (lower end {dev[chosen]['low']:+.2f} against "
            f"{dev[Z_CLEAR]['low']:+.2f})."
            if chosen != Z_CLEAR
            else f"**The default z = {Z_CLEAR:g} stays**: the best development lower end, "
            f"{max(s['low'] for s in dev.values()):+.2f}, is within {TIE:g} point of the "
            f"default's {dev[Z_CLEAR]['low']:+.2f}; the threshold is not where the gap is."
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    write_section("selection-replay", render(rows), summarize(rows))
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
