"""Who is who among a search's completed trials: the baseline, the incumbent, the top trial.

Each role is decided here and nowhere else, for the live search and for every reader of a
stored study (``export``, ``report``, ``sync-mlflow``, ``lossearch.optuna.best_config``),
so that all of them name the same trials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lossearch.config import LossConfig

BASELINE_RECIPE = "ce_baseline"
N_LEADERS = 3  # top trials by search score that go on to confirmation


def is_plain_ce(config: LossConfig) -> bool:
    """Unweighted cross-entropy without smoothing or re-weighting: the baseline's loss."""
    return (
        config.family == "ce"
        and config.weights == "none"
        and not config.label_smoothing
        and config.drw_start is None
    )


def baseline_record(records: Iterable):
    """The CE baseline every pick is reported against: the ``ce_baseline`` recipe, else
    the lowest-numbered plain-CE recipe, else the lowest-numbered plain-CE trial."""
    plain = sorted((r for r in records if is_plain_ce(r.config)), key=lambda r: r.number)
    for preferred in (
        [r for r in plain if r.recipe == BASELINE_RECIPE],
        [r for r in plain if r.recipe],
        plain,
    ):
        if preferred:
            return preferred[0]
    return None


def top_record(records: Sequence, maximize: bool):
    """The trial with the best search score (the lowest number among ties)."""
    ordered = sorted(records, key=lambda r: r.number)
    return max(ordered, key=lambda r: r.value if maximize else -r.value)


def _adjusted_incumbent(config, objective, task: str) -> bool:
    """Whether ``config`` (a record's or a space recipe's) is the incumbent a class-averaged
    objective on a multiclass task declares: logit adjustment, tau = 1, no weights."""
    return (
        task == "multiclass"
        and objective.class_averaged
        and config.family == "logit_adjusted"
        and config.weights == "none"
        and config.params.get("tau") == 1.0
    )


def incumbent_record(records: Sequence, objective, task: str):
    """The config kept unless something is clearly better, fixed before any score is seen:
    for a class-averaged objective on a multiclass task the logit-adjusted recipe
    (tau = 1), else the CE baseline recipe, else the best-scoring recipe."""
    adjusted = [
        r
        for r in sorted(records, key=lambda r: r.number)
        if r.recipe and _adjusted_incumbent(r.config, objective, task)
    ]
    if adjusted:
        return adjusted[0]
    recipes = [r for r in records if r.recipe]
    baseline = baseline_record(recipes)
    if baseline is not None:
        return baseline
    return top_record(recipes, objective.maximize) if recipes else None


def recipes_in_running_order(recipes: Sequence, objective, task: str) -> list:
    """A space's recipes in the order a search runs them: the incumbent
    :func:`incumbent_record` will declare, then the CE baseline, then the others as the
    space lists them. A budget smaller than the recipes still measures the two every pick
    is judged against (with 3 trials, main ran CE, inverse weights and effective-number
    weights, and never the logit-adjusted incumbent)."""

    def rank(recipe) -> int:
        if _adjusted_incumbent(recipe, objective, task):
            return 0
        return 1 if recipe.name == BASELINE_RECIPE else 2

    return sorted(recipes, key=rank)  # stable: the space's order within each rank


def declared_incumbent(recipes: Sequence, objective, task: str):
    """The space recipe :func:`incumbent_record` declares the incumbent when it completes
    (the logit-adjusted recipe, else the CE baseline recipe), or None when the space
    declares none (the best-scoring recipe stands in then)."""
    for recipe in recipes_in_running_order(recipes, objective, task)[:1]:
        if _adjusted_incumbent(recipe, objective, task) or recipe.name == BASELINE_RECIPE:
            return recipe
    return None


def pick_candidates(records: Sequence, objective, task: str) -> list[tuple]:
    """``(record, role)`` pairs to confirm: the leaders, the incumbent, the best other
    recipe and the CE baseline; roles ``"incumbent"``, ``"baseline"``, both or ``""``."""
    ordered = sorted(
        sorted(records, key=lambda r: r.number),
        key=lambda r: r.value,
        reverse=objective.maximize,
    )
    incumbent = incumbent_record(records, objective, task)
    baseline = baseline_record(records)
    recipes = [r for r in ordered if r.recipe and r is not incumbent][:1]
    picked, roles = [], {}
    for record in [*ordered[:N_LEADERS], incumbent, *recipes, baseline]:
        if record is not None and record.number not in roles:
            picked.append(record)
            roles[record.number] = ""
    if baseline is not None:
        roles[baseline.number] = "baseline"
    if incumbent is not None:  # plain CE can be both (binary)
        roles[incumbent.number] = " ".join(filter(None, ["incumbent", roles[incumbent.number]]))
    return [(r, roles[r.number]) for r in picked]
