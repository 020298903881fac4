"""Pruners replayed on the whole budget's curves: which would have kept the winners, at what cost?

A whole-budget search (``early_stop=False``, no pruner) trains every sampled configuration
every epoch, and `benchmarks/image_searches.py` keeps each trial's validation curve
(``efficacy.curves``; run with ``--results`` into ``pruner_replay_searches.json``, apart from
that benchmark's paired rows). This script hands those trials, in their order and epoch by epoch, to
each candidate pruner of :data:`CANDIDATES` — a real Optuna pruner on a fresh in-memory study
— under lossearch's own rules: a recipe is never pruned, and a trial is judged only from its
first judged epoch of each fold (its deferred re-weighting's start, and for the "from half"
candidates no earlier than half the epochs). Per search and candidate it reports:

* **keeps the winners**: the pruner prunes neither the whole budget's pick nor any trial its
  selection confirmed (the leaders by validation it re-ran);
* **epochs**: the sampled trials' epochs the pruner lets train, as a share of the whole
  budget's.

The sampler's sequence is held fixed: a pruned trial would have changed what TPE samples
next, which no replay can know, so this judges a pruner's mechanism, not what it delivers
(docs/selection.md, "Round two", says how its choice is then run for real).

Run: .venv/bin/python benchmarks/image_searches.py --problems mnist-LT100 --seeds 0 1 2 3 4
         --methods lossearch_whole_budget --jobs 2
         --results benchmarks/results/pruner_replay_searches.json
     then .venv/bin/python benchmarks/pruner_replay.py [--problems mnist-LT100]
     (writes pruner_replay.json and its section of BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from sections import machine, publish
from time_to_pick import RESULTS
from whole_budget import METHOD as WHOLE

SOURCE = RESULTS / "pruner_replay_searches.json"
PATH = RESULTS / "pruner_replay.json"


@dataclass(frozen=True)
class Candidate:
    """A pruner, and the share of each fold's epochs before which it judges no trial."""

    label: str
    make: Callable[[], optuna.pruners.BasePruner]
    judged_from_share: float = 0.0


CANDIDATES = (
    Candidate("successive halving (shipped)", optuna.pruners.SuccessiveHalvingPruner),
    Candidate(
        "successive halving, first rung at epoch 4",
        lambda: optuna.pruners.SuccessiveHalvingPruner(min_early_stopping_rate=1),
    ),
    Candidate(
        "successive halving keeping half",
        lambda: optuna.pruners.SuccessiveHalvingPruner(reduction_factor=2),
    ),
    Candidate("median, from half the epochs", optuna.pruners.MedianPruner, 0.5),
    Candidate(
        "25th percentile (the top quarter kept), from half the epochs",
        lambda: optuna.pruners.PercentilePruner(25.0),
        0.5,
    ),
    Candidate(
        "successive halving, from half the epochs", optuna.pruners.SuccessiveHalvingPruner, 0.5
    ),
)


def _first_judged(trial: dict, epochs: int, share: float) -> int | None:
    """The first epoch (of each fold) at which ``trial`` may be judged; None: never."""
    from lossearch.callbacks import first_final_epoch
    from lossearch.config import LossConfig

    if trial["recipe"]:
        return None
    config = LossConfig.from_dict(trial["config"])
    return max(first_final_epoch(config, epochs), int(share * epochs))


def replay(curves: list[dict], epochs: int, candidate: Candidate) -> dict[int, int]:
    """``{trial: epochs it trained}`` under ``candidate``, the pruned ones marked negative."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=candidate.make())
    trained = {}
    for row in curves:
        if row["duplicate_of"] is not None or not row["values"] or row["config"] is None:
            continue  # trained nothing, or never got a config
        judged_from = _first_judged(row, epochs, candidate.judged_from_share)
        trial = study.ask()
        trained[row["trial"]] = len(row["values"])
        for step, value in enumerate(row["values"]):
            trial.report(value, step)
            judged = judged_from is not None and step % epochs >= judged_from
            if judged and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                trained[row["trial"]] = -(step + 1)
                break
        else:  # trained to the end: complete, or failed at its last epoch
            if row["value"] is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, row["value"])
    return trained


def judge(row: dict, candidate: Candidate) -> dict:
    """One search under one candidate: winners kept, and the sampled epochs' share."""
    epochs = row["budget"]["epochs"]
    trained = replay(row["curves"], epochs, candidate)
    sampled = {r["trial"] for r in row["curves"] if not r["recipe"]} & set(trained)
    winners = {row["pick_trial"]} | {c["trial"] for c in row["confirmation"]}
    lost = sorted(t for t in winners if trained.get(t, 0) < 0)
    full = sum(len(r["values"]) for r in row["curves"] if r["trial"] in sampled)
    return {
        "setting": row["setting"],
        "seed": row["seed"],
        "candidate": candidate.label,
        "keeps_winners": not lost,
        "lost": lost,
        "epoch_share": sum(abs(trained[t]) for t in sampled) / full if full else 1.0,
        "pruned": sum(trained[t] < 0 for t in sampled),
        "sampled": len(sampled),
    }


def chosen(results: list[dict]) -> str:
    """docs/selection.md's rule: most searches with the winners kept, then fewest epochs."""
    by = {}
    for r in results:
        by.setdefault(r["candidate"], []).append(r)
    return max(
        by,
        key=lambda c: (
            sum(r["keeps_winners"] for r in by[c]),
            -statistics.mean(r["epoch_share"] for r in by[c]),
        ),
    )


def summarize(saved: dict) -> str:
    results, meta = saved["results"], saved["meta"]
    searches = len({(r["setting"], r["seed"]) for r in results})
    lines = [
        f"Computed {saved['date']} (`benchmarks/pruner_replay.py`, no training) from "
        f"{searches} whole-budget searches ({meta['searches']}, code {meta['commits']}); "
        "counts, no interval.",
        "",
    ]
    for candidate in CANDIDATES:
        mine = [r for r in results if r["candidate"] == candidate.label]
        lines.append(
            f"- {candidate.label}: keeps the selection's winners in "
            f"{sum(r['keeps_winners'] for r in mine)} of {len(mine)} searches, at "
            f"{statistics.mean(r['epoch_share'] for r in mine):.2f} of the sampled epochs."
        )
    return "\n".join([*lines, "", f"Chosen under the rule: **{saved['chosen']}**."])


def render(saved: dict) -> str:
    results, meta = saved["results"], saved["meta"]
    lines = [
        "## Pruners replayed on the whole budget's curves",
        "",
        f"Computed {saved['date']} with `benchmarks/pruner_replay.py` on {meta['machine']} from "
        f"the whole-budget searches of `pruner_replay_searches.json` ({meta['searches']}, code "
        f"{meta['commits']}). Each candidate, a real Optuna pruner, sees each search's trials in "
        "their order under lossearch's rules (recipes never pruned; a deferred schedule not "
        "judged before it starts); the sampler's sequence is held fixed, so this judges a "
        "pruner's mechanism, not what it delivers. *Keeps the winners*: prunes neither the "
        "pick nor a trial the selection confirmed. Rule and candidates: docs/selection.md, "
        '"Round two", written before the runs.',
        "",
        "| pruner | keeps the winners | sampled epochs trained (mean, range) | "
        "sampled trials pruned | winners lost |",
        "|---|---|---|---|---|",
    ]
    for candidate in CANDIDATES:
        mine = [r for r in results if r["candidate"] == candidate.label]
        shares = [r["epoch_share"] for r in mine]
        lost = "; ".join(f"{r['setting']} seed {r['seed']}: {r['lost']}" for r in mine if r["lost"])
        lines.append(
            f"| {candidate.label} | {sum(r['keeps_winners'] for r in mine)} of {len(mine)} | "
            f"{statistics.mean(shares):.2f} ({min(shares):.2f}–{max(shares):.2f}) | "
            f"{sum(r['pruned'] for r in mine)} of {sum(r['sampled'] for r in mine)} | "
            f"{lost or '–'} |"
        )
    lines += ["", f"Chosen under the rule: **{saved['chosen']}**."]
    return "\n".join(lines)


def main(argv=None) -> int:
    import datetime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["mnist-LT100"])
    parser.add_argument("--render", action="store_true", help="rewrite from the saved JSON")
    args = parser.parse_args(argv)
    if not args.render:
        rows = [
            r
            for r in json.loads(SOURCE.read_text())["rows"]
            if r["method"] == WHOLE and r["setting"] in args.problems and "curves" in r
        ]
        if not rows:
            parser.error(f"no whole-budget rows with curves for {args.problems} in {SOURCE}")
        results = [judge(row, c) for row in rows for c in CANDIDATES]
        searches = ", ".join(f"{r['setting']} seed {r['seed']}" for r in rows)
        PATH.write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "meta": {
                        "machine": machine(),
                        "searches": searches,
                        "commits": ", ".join(sorted({r["commit"] for r in rows})),
                    },
                    "results": results,
                    "chosen": chosen(results),
                },
                indent=1,
            )
        )
    publish("pruner-replay", PATH, render, summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
