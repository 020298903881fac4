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


def incumbent_record(records: Sequence, objective, task: str):
    """The config kept unless something is clearly better, fixed before any score is seen:
    for a class-averaged objective on a multiclass task the logit-adjusted recipe
    (tau = 1), else the CE baseline recipe, else the best-scoring recipe."""
    if task == "multiclass" and objective.class_averaged:
        adjusted = [
            r
            for r in sorted(records, key=lambda r: r.number)
            if r.recipe
            and r.config.family == "logit_adjusted"
            and r.config.weights == "none"
            and r.config.params.get("tau") == 1.0
        ]
        if adjusted:
            return adjusted[0]
    recipes = [r for r in records if r.recipe]
    baseline = baseline_record(recipes)
    if baseline is not None:
        return baseline
    return top_record(recipes, objective.maximize) if recipes else None


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
