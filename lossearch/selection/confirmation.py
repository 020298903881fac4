"""The robust rule: confirm candidates on fresh seeds, keep the incumbent unless clearly beaten.

A single training run scored on a hold-out split whose tail classes have one or two
samples is noisy: the trial with the highest validation score is often just lucky,
and so is the *recipe* with the highest score. So (``selection="robust"``):

1. **Incumbent**: a principled choice fixed before looking at any score
   (:func:`lossearch.selection.roles.incumbent_record`).
2. **Candidates**: the top trials by search score, the incumbent, the best other
   recipe, and the CE baseline (measured the same way, for a like-for-like report).
3. **Confirmation**: each candidate is retrained with ``confirm_seeds`` more seeds at
   the full epoch budget, one round of seeds at a time; its score is the mean over runs
   (the search run counts when it trained the full budget: under Hyperband it may not
   have). A challenger whose mean is no better than the incumbent's after a round
   stops there: winning takes a gain of ``Z_CLEAR`` standard errors, which one more run
   cannot bring from a gain <= 0, so its runs would buy nothing (racing). After an early
   stop (:mod:`lossearch.stopping`) the candidates the stopper did not name as contenders
   are set aside from the start: the incumbent is still confirmed.
4. **Choice**: the best confirmed candidate replaces the incumbent only if its gain is
   at least ``Z_CLEAR`` standard errors. The standard error combines a *paired*
   bootstrap over validation samples (shared noise cancels) with both sides'
   seed-to-seed variance. Comparing against the declared incumbent, not the
   best-scoring recipe, avoids a second winner's curse among the recipes.
5. **Decision rule**: the chosen config's rule (:mod:`lossearch.decision`) is tuned on
   the validation predictions of all its runs together.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from lossearch._noise import Z_CLEAR, paired_std
from lossearch.decision import Decision, pooled
from lossearch.hyperparameters import FixedHyperParameters
from lossearch.metrics import evaluate
from lossearch.selection.roles import pick_candidates


@dataclass
class Candidate:
    """A trial under confirmation: its runs' scores and validation predictions."""

    trial_number: int
    config: object
    hp_values: dict
    recipe: str | None
    search_value: float
    values: list[float] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)  # under each run's decision
    probabilities: list[np.ndarray] = field(default_factory=list)  # raw, to tune the rule
    decision: Decision | None = None
    role: str = ""  # "incumbent", "baseline", both ("incumbent baseline") or ""
    stopped: bool = False  # left the race behind the incumbent: fewer runs, not chosen
    set_aside: bool = False  # no contender after an early stop: not raced, not chosen
    unstable: bool = False  # a confirmation run failed: not a config to trust

    @property
    def out_of_race(self) -> bool:
        """Stopped behind the incumbent or set aside: no more runs, never chosen."""
        return self.stopped or self.set_aside

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def seed_var(self) -> float:
        return float(np.var(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def pooled_metrics(self, y_true, context) -> dict | None:
        """Validation metrics over all confirmed runs (each run's samples counted once).

        Per-class recall and precision are then the means over runs; the chosen
        config's runs are scored under its pooled decision rule.
        """
        if not self.predictions:
            return None
        if self.decision is not None and len(self.probabilities) == len(self.predictions):
            runs = [self.decision.apply(p) for p in self.probabilities]
        else:
            runs = self.predictions
        y_all, p_all = pooled(y_true, runs)
        metrics = evaluate(y_all, p_all, **context).to_dict()
        for values in metrics["per_class"].values():  # the split's support, not runs x support
            values["support"] //= len(runs)
        return metrics


@dataclass
class Verdict:
    """How the race ended: the chosen candidate, the leader and every candidate's runs."""

    chosen: Candidate
    leader: Candidate
    candidates: list[Candidate]
    gain: float = 0.0  # leader minus incumbent, in objective units (sign: better > 0)
    gain_se: float = float("nan")
    reason: str = ""

    def role(self, role: str) -> Candidate | None:
        return next((c for c in self.candidates if role in c.role.split()), None)

    def table(self) -> list[dict]:
        return [
            {
                "trial": c.trial_number,
                "config": c.config.describe(),
                "recipe": c.recipe or "",
                "role": c.role,
                "search_value": c.search_value,
                "confirmed_mean": c.mean,
                "seed_std": math.sqrt(c.seed_var),
                "runs": len(c.values),
                # each run's score, the search run first when it trained the full budget
                "values": [float(v) for v in c.values],
                "stopped": c.stopped,
                "set_aside": c.set_aside,
                "chosen": c is self.chosen,
            }
            for c in self.candidates
        ]


# -- confirmation ------------------------------------------------------------------------------


def _candidate(record, role: str, full_epochs: bool) -> Candidate:
    kept = full_epochs and record.y_prob is not None  # resumed trials kept no predictions
    return Candidate(
        record.number,
        record.config,
        record.hp_values,
        record.recipe,
        record.value,
        [record.value] if full_epochs else [],
        [record.scores] if kept else [],
        [record.y_prob] if kept else [],
        record.decision,
        role,
    )


def confirm(
    candidates, runner, confirm_seeds: int, seed: int | None, maximize: bool = True
) -> list[str]:
    """Retrain the candidates, a round of seeds at a time, until each has ``confirm_seeds + 1``
    full runs or has stopped behind the incumbent (module docstring, step 3); failures listed."""
    base = 10_000 if seed is None else seed + 10_000
    target = confirm_seeds + 1
    done = {id(c): 0 for c in candidates}  # confirmation runs so far: each run's seed index
    racing = sorted(candidates, key=lambda c: "incumbent" not in c.role)  # incumbent first
    unstable = []
    for _ in range(target):
        for candidate in racing:
            if candidate.out_of_race or candidate.unstable or len(candidate.values) >= target:
                continue
            k = done[id(candidate)]
            try:
                outcome = runner.run(
                    candidate.config,
                    hp=FixedHyperParameters(candidate.hp_values),
                    seed=base + 97 * k + candidate.trial_number,
                )
            except Exception as exc:  # e.g. diverges on another seed: not a config to trust
                candidate.unstable = True
                unstable.append(f"trial {candidate.trial_number} ({type(exc).__name__}: {exc})")
                continue
            done[id(candidate)] = k + 1
            candidate.values.append(outcome.value)
            candidate.predictions.append(outcome.y_score)
            candidate.probabilities.append(outcome.y_prob)
        _stop_the_trailing(racing, maximize, target)
    return unstable


def _incumbent(candidates) -> Candidate | None:
    return next((c for c in candidates if "incumbent" in c.role), None)


def _set_aside(candidates, contenders) -> list[str]:
    """Set aside the candidates (all but the incumbent) that are not among an early stop's
    ``contenders``; their names. The baseline too: it is then reported from its search
    run."""
    incumbent = _incumbent(candidates)
    if contenders is None or incumbent is None:
        return []
    for c in candidates:
        c.set_aside = c is not incumbent and c.trial_number not in contenders
    return [_name(c) for c in candidates if c.set_aside]


def _stop_the_trailing(candidates, maximize: bool, target: int) -> None:
    """Stop the challengers (neither incumbent nor baseline) no better than the incumbent.

    Both sides need two runs: one search run is a winner's-curse estimate. The baseline
    runs on, so that it is reported like for like with the pick."""
    incumbent = _incumbent(candidates)
    if incumbent is None or incumbent.unstable or len(incumbent.values) < 2:
        return
    sign = 1.0 if maximize else -1.0
    for c in candidates:
        if not c.role and not c.unstable and 2 <= len(c.values) < target:
            c.stopped = c.stopped or sign * (c.mean - incumbent.mean) <= 0


def race(
    records,
    runner,
    objective,
    *,
    confirm_seeds: int,
    seed: int | None,
    contenders: Collection[int] | None = None,
) -> Verdict:
    """Confirm the candidates with extra seeds and choose (see the module docstring);
    after an early stop, only the incumbent and the ``contenders``."""
    budget = runner.epochs * len(runner.data.splits)
    candidates = [
        _candidate(record, role, record.epochs_trained in (0, budget))  # 0: not recorded
        for record, role in pick_candidates(records, objective, runner.data.task)
    ]
    aside = _set_aside(candidates, contenders)
    unstable = confirm(candidates, runner, confirm_seeds, seed, objective.maximize)
    stable = [c for c in candidates if c.values and not c.unstable]
    candidates = stable or [c for c in candidates if c.values]
    y_true = runner.data.validation_targets
    verdict = choose(candidates, objective, y_true, runner.context, objective.maximize, seed)
    if verdict.chosen.probabilities:
        verdict.chosen.decision = runner.fit_decision(*pooled(y_true, verdict.chosen.probabilities))
    if aside:
        verdict.reason += (
            f"; not raced, the search having stopped early: {', '.join(aside)} "
            f"(no clear gain over the recipe to beat on their search runs)"
        )
    stopped = [f"trial {c.trial_number} ({len(c.values)} runs)" for c in candidates if c.stopped]
    if stopped:
        verdict.reason += "; stopped early, no better than the recipe to beat: " + ", ".join(
            stopped
        )
    if unstable:
        verdict.reason += "; dropped as unstable under other seeds: " + ", ".join(unstable)
    return verdict


# -- the choice --------------------------------------------------------------------------------


def choose(candidates, objective, y_true, context, maximize, seed) -> Verdict:
    """The incumbent unless the best confirmed candidate beats it clearly."""
    sign = 1.0 if maximize else -1.0
    racing = [c for c in candidates if not c.out_of_race] or candidates
    leader = max(racing, key=lambda c: sign * c.mean)
    incumbent = _incumbent(candidates)
    if incumbent is None:
        return Verdict(leader, leader, candidates, reason="no recipe to beat to compare with")
    if leader is incumbent:
        reason = f"the recipe to beat, {_name(leader)}, confirmed best"
        return Verdict(leader, leader, candidates, reason=reason)
    boot_std = paired_std(
        lambda y, p: objective(y, p, **context),
        y_true,
        leader.predictions,
        incumbent.predictions,
        seed,
    )
    return decide(leader, incumbent, boot_std, maximize, candidates)


def _name(candidate: Candidate) -> str:
    return f"recipe {candidate.recipe!r}" if candidate.recipe else f"trial {candidate.trial_number}"


def decide(leader: Candidate, incumbent: Candidate, boot_std: float, maximize: bool, candidates):
    """Keep ``incumbent`` unless ``leader``'s mean gain exceeds ``Z_CLEAR`` standard errors.

    The standard error combines the paired-bootstrap spread of the gain
    (validation sampling) with each side's seed-to-seed variance of its mean.
    """
    sign = 1.0 if maximize else -1.0
    gain = sign * (leader.mean - incumbent.mean)
    se = math.sqrt(
        (boot_std if math.isfinite(boot_std) else 0.0) ** 2
        + leader.seed_var / len(leader.values)
        + incumbent.seed_var / len(incumbent.values)
    )
    clear = gain > Z_CLEAR * se
    chosen = leader if clear else incumbent
    reason = (
        f"gain {gain:+.4f} of {_name(leader)} over the recipe to beat, {_name(incumbent)}, is "
        f"{'above' if clear else 'within'} {Z_CLEAR} x its standard error {se:.4f}"
        f" -> {_name(leader) if clear else 'the recipe to beat'} is kept"
    )
    return Verdict(chosen, leader, candidates, gain, se, reason)
