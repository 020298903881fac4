"""Choosing the config to trust: confirm the leaders, prefer a recipe unless beaten clearly.

A single training run on a hold-out split with a handful of tail-class samples is
noisy: the trial with the highest validation score is often just lucky. So after
the search (``selection="robust"``, the default):

1. **Candidates**: the top trials by search score plus the best recipe trials.
2. **Confirmation**: each candidate is retrained with ``confirm_seeds`` more seeds;
   its score is the mean over seeds (the search run included).
3. **Noise**: the gain of the leader over each recipe is tested with a *paired*
   bootstrap over validation samples (same resamples for both, so the shared
   validation noise cancels) plus the seed-to-seed variance.
4. **Choice**: the leader wins only if its gain over the best recipe is at least
   ``Z_CLEAR`` standard errors; otherwise the recipe (a published, simpler
   configuration) is chosen. The gain and its standard error are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lossearch.hyperparameters import HyperParameters
from lossearch.metrics import Objective

Z_CLEAR = 1.64  # one-sided 95%: "clearly above noise"
N_LEADERS = 3
N_RECIPES = 2
BOOTSTRAP_ROUNDS = 100


class FixedHyperParameters(HyperParameters):
    """Replays a trial's ``hp`` values (defaults for anything it never drew)."""

    def __init__(self, values: dict):
        super().__init__()
        self.fixed = dict(values)

    def _suggest_float(self, name, low, high, step, log, default):
        return self.fixed.get(name, low if default is None else default)

    def _suggest_int(self, name, low, high, step, log, default):
        return self.fixed.get(name, low if default is None else default)

    def _suggest_choice(self, name, values, default):
        return self.fixed.get(name, values[0] if default is None else default)


@dataclass
class Candidate:
    trial_number: int
    config: object
    hp_values: dict
    recipe: str | None
    search_value: float
    values: list[float] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def seed_var(self) -> float:
        return float(np.var(self.values, ddof=1)) if len(self.values) > 1 else 0.0


@dataclass
class Selection:
    chosen: Candidate
    leader: Candidate
    candidates: list[Candidate]
    gain: float = 0.0  # leader minus best recipe, in objective units (sign: better > 0)
    gain_se: float = float("nan")
    reason: str = ""

    def table(self) -> list[dict]:
        return [
            {
                "trial": c.trial_number,
                "config": c.config.describe(),
                "recipe": c.recipe or "",
                "search_value": c.search_value,
                "confirmed_mean": c.mean,
                "seed_std": math.sqrt(c.seed_var),
                "runs": len(c.values),
                "chosen": c is self.chosen,
            }
            for c in self.candidates
        ]


def pick_candidates(records, maximize: bool) -> list:
    ordered = sorted(records, key=lambda r: r.value, reverse=maximize)
    leaders = ordered[:N_LEADERS]
    recipes = [r for r in ordered if r.recipe][:N_RECIPES]
    picked, seen = [], set()
    for record in leaders + recipes:
        if record.number not in seen:
            seen.add(record.number)
            picked.append(record)
    return picked


def _paired_gain(objective, y_true, leader, other, context, maximize, rng):
    """Bootstrap std of (leader - other) on shared resamples, averaged over seeds."""
    n = len(y_true)
    diffs = []
    for _ in range(BOOTSTRAP_ROUNDS):
        idx = rng.integers(0, n, n)
        try:
            a = np.mean([objective(y_true[idx], p[idx], **context) for p in leader.predictions])
            b = np.mean([objective(y_true[idx], p[idx], **context) for p in other.predictions])
        except ValueError:
            continue
        if np.isfinite(a) and np.isfinite(b):
            diffs.append((a - b) if maximize else (b - a))
    return float(np.std(diffs)) if len(diffs) > 1 else float("nan")


def select(
    records, runner, objective: Objective, *, confirm_seeds: int, seed: int | None
) -> Selection:
    """Confirm the candidates with extra seeds and choose (see the module docstring)."""
    maximize = objective.direction == "maximize"
    candidates = [
        Candidate(
            r.number,
            r.config,
            r.hp_values,
            r.recipe,
            r.value,
            [r.value],
            [] if r.y_prob is None else [r.y_prob],  # resumed trials kept no predictions
        )
        for r in pick_candidates(records, maximize)
    ]
    base = 10_000 if seed is None else seed + 10_000
    unstable = []
    for candidate in candidates:
        for k in range(confirm_seeds):
            try:
                outcome = runner.run(
                    candidate.config,
                    hp=FixedHyperParameters(candidate.hp_values),
                    seed=base + 97 * k + candidate.trial_number,
                )
            except Exception as exc:  # e.g. diverges on another seed: not a config to trust
                unstable.append(f"trial {candidate.trial_number} ({type(exc).__name__}: {exc})")
                break
            candidate.values.append(outcome.value)
            candidate.predictions.append(outcome.y_prob)
    stable = [c for c in candidates if len(c.values) == confirm_seeds + 1]
    candidates = stable or candidates
    picked = _choose(candidates, objective, runner, maximize, seed)
    if unstable:
        picked.reason += "; dropped as unstable under other seeds: " + ", ".join(unstable)
    return picked


def _choose(candidates, objective, runner, maximize, seed) -> Selection:
    sign = 1.0 if maximize else -1.0
    leader = max(candidates, key=lambda c: sign * c.mean)
    recipes = sorted((c for c in candidates if c.recipe), key=lambda c: -sign * c.mean)
    if leader.recipe or not recipes:
        return Selection(
            leader,
            leader,
            candidates,
            reason="the best confirmed config is a recipe"
            if leader.recipe
            else "no recipe to compare with",
        )
    best_recipe = recipes[0]
    y_true = runner.data.validation_targets
    rng = np.random.default_rng(seed)
    boot_std = _paired_gain(objective, y_true, leader, best_recipe, runner.context, maximize, rng)
    return decide(leader, best_recipe, boot_std, maximize, candidates)


def decide(leader: Candidate, recipe: Candidate, boot_std: float, maximize: bool, candidates):
    """Keep ``recipe`` unless ``leader``'s mean gain exceeds ``Z_CLEAR`` standard errors.

    The standard error combines the paired-bootstrap spread of the gain
    (validation sampling) with each side's seed-to-seed variance of its mean.
    """
    sign = 1.0 if maximize else -1.0
    gain = sign * (leader.mean - recipe.mean)
    se = math.sqrt(
        (boot_std if math.isfinite(boot_std) else 0.0) ** 2
        + leader.seed_var / len(leader.values)
        + recipe.seed_var / len(recipe.values)
    )
    clear = gain > Z_CLEAR * se
    chosen = leader if clear else recipe
    reason = (
        f"gain {gain:+.4f} over recipe {recipe.recipe!r} is "
        f"{'above' if clear else 'within'} {Z_CLEAR} x its standard error {se:.4f}"
        f" -> {'the searched config' if clear else 'the recipe'} is kept"
    )
    return Selection(chosen, leader, candidates, gain, se, reason)
