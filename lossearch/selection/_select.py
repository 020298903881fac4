"""The pick, decided once: :func:`select` returns a :class:`Selection` for either rule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossearch.config import LossConfig
from lossearch.decision import Decision
from lossearch.selection.confirmation import Verdict, race
from lossearch.selection.notes import validation_warnings
from lossearch.selection.roles import baseline_record, top_record

RULES = ("robust", "best")
TOP_TRIAL = "the top trial by search score"


@dataclass(frozen=True)
class Selection:
    """The pick and how it was made: what the result, the study, reports and MLflow show.

    ``chosen``, ``baseline`` and ``incumbent`` are trial records (the baseline is the
    plain-CE trial every pick is reported against). ``value`` and ``metrics`` are the
    chosen trial's, over its ``runs`` (rule ``"robust"``: pooled over its confirmation
    runs; rule ``"best"``: its search trial); the baseline's are measured the same way.

    Example:
        >>> result.selection.reason           # doctest: +SKIP
        'the incumbent recipe 'logit_adjusted' confirmed best'
        >>> result.selection.to_dict()["baseline_trial"]  # doctest: +SKIP
        1
    """

    rule: str
    chosen: Any  # TrialRecord
    baseline: Any = None
    incumbent: Any = None
    value: float = math.nan
    std: float = 0.0  # seed-to-seed standard deviation over its runs
    runs: int = 1
    decision: Decision | None = None  # the chosen config's tuned rule
    metrics: dict | None = None
    baseline_value: float | None = None
    baseline_runs: int = 0
    baseline_metrics: dict | None = None
    reason: str = ""
    gain: float | None = None  # leader minus incumbent (better > 0); robust rule only
    gain_se: float | None = None
    leader_trial: int | None = None
    table: tuple[dict, ...] = ()  # the candidates, their runs and roles (robust rule)
    warnings: tuple[str, ...] = ()  # why the validation split may not judge, ...
    scoring: str = ""  # how trials were scored, in words
    # the facts of the data the pick is refit on (TrialRunner.refit_facts: all labelled data's
    # class counts); empty: the trials' own (their training split's)
    data_facts: dict = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> LossConfig:
        """The chosen loss with its tuned decision rule, told the counts of all labelled data:
        what ``export`` writes and ``result.model`` was refit with."""
        return dataclasses.replace(self.chosen.config, decision=self.decision, **self.data_facts)

    @property
    def recipe(self) -> str | None:
        return self.chosen.recipe

    def with_warning(self, note: str) -> Selection:
        return dataclasses.replace(self, warnings=(*self.warnings, note))

    def to_dict(self) -> dict[str, Any]:
        """What the study keeps and MLflow gets (``selection.json``): JSON, with trial
        numbers for the records."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for role in ("chosen", "baseline", "incumbent"):
            record = data.pop(role)
            data["trial" if role == "chosen" else f"{role}_trial"] = (
                None if record is None else record.number
            )
        data.update(
            recipe=self.recipe,
            decision=None if self.decision is None else self.decision.to_dict(),
            table=[dict(row) for row in self.table],
            warnings=list(self.warnings),
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], records: Sequence) -> Selection | None:
        """The selection a study keeps, with its records; None when its chosen trial is not
        among ``records``. Reads what earlier versions stored too (fewer keys)."""
        by_number = {r.number: r for r in records}
        chosen = by_number.get(data.get("trial"))
        if chosen is None:
            return None
        baseline = by_number.get(data.get("baseline_trial"))
        if baseline is None and "baseline_trial" not in data:  # stored before it was kept
            baseline = baseline_record(records)
        known = {f.name for f in dataclasses.fields(cls)} - {"chosen", "baseline", "incumbent"}
        values = {k: v for k, v in data.items() if k in known}
        decision = values.get("decision")
        values.update(
            rule=values.get("rule", "robust"),
            decision=Decision.from_dict(decision) if decision else chosen.decision,
            table=tuple(values.get("table", ())),
            warnings=tuple(values.get("warnings", ())),
        )
        incumbent = by_number.get(data.get("incumbent_trial"))
        return cls(chosen=chosen, baseline=baseline, incumbent=incumbent, **values)


def top_trial(records: Sequence, maximize: bool, reason: str = TOP_TRIAL) -> Selection:
    """The rule ``"best"``: the top trial by search score, against the CE baseline's trial."""
    best, baseline = top_record(records, maximize), baseline_record(records)
    return Selection(
        "best",
        best,
        baseline=baseline,
        value=best.value,
        decision=best.decision,
        metrics=best.metrics,
        baseline_value=None if baseline is None else baseline.value,
        baseline_runs=0 if baseline is None else 1,
        baseline_metrics=None if baseline is None else baseline.metrics,
        reason=reason,
    )


def select(
    records: Sequence,
    objective,
    rule: str = "robust",
    *,
    runner=None,
    confirm_seeds: int = 2,
    seed: int | None = None,
    contenders: Collection[int] | None = None,
) -> Selection:
    """Choose among a search's completed trial records (see :mod:`.confirmation`).

    ``"robust"`` confirms the candidates with ``runner`` on ``confirm_seeds`` more seeds
    and keeps the incumbent unless it is clearly beaten; ``"best"`` (and ``"robust"``
    with nothing to confirm: no runner, ``confirm_seeds=0`` or one record) takes the top
    trial. With a runner, the selection carries the validation warnings and the scoring.
    ``contenders`` (after an early stop): the trials that may be raced against the
    incumbent; the other candidates are set aside.
    """
    if rule not in RULES:
        raise ValueError(f"selection: expected one of {list(RULES)}, got {rule!r}.")
    if not records:
        raise ValueError("selection: no completed trial to choose from.")
    if rule == "best" or runner is None or confirm_seeds == 0 or len(records) == 1:
        why = TOP_TRIAL if rule == "best" else f"{TOP_TRIAL} (nothing to confirm)"
        picked = top_trial(records, objective.maximize, why)
    else:
        verdict = race(
            records,
            runner,
            objective,
            confirm_seeds=confirm_seeds,
            seed=seed,
            contenders=contenders,
        )
        picked = _confirmed(verdict, records, runner)
    if runner is None:
        return picked
    notes = validation_warnings(runner.data, records, objective)
    return dataclasses.replace(picked, warnings=tuple(notes), scoring=runner.data.scoring)


def _confirmed(verdict: Verdict, records: Sequence, runner) -> Selection:
    by_number = {r.number: r for r in records}
    chosen, baseline = verdict.chosen, verdict.role("baseline")
    incumbent = verdict.role("incumbent")
    y_true = runner.data.validation_targets
    return Selection(
        "robust",
        by_number[chosen.trial_number],
        baseline=None if baseline is None else by_number[baseline.trial_number],
        incumbent=None if incumbent is None else by_number[incumbent.trial_number],
        value=chosen.mean,
        std=math.sqrt(chosen.seed_var),
        runs=len(chosen.values),
        decision=chosen.decision,
        metrics=chosen.pooled_metrics(y_true, runner.context),
        # confirmed with the same seeds and epochs as the pick
        baseline_value=None if baseline is None else baseline.mean,
        baseline_runs=0 if baseline is None else len(baseline.values),
        baseline_metrics=None
        if baseline is None
        else baseline.pooled_metrics(y_true, runner.context),
        reason=verdict.reason,
        gain=verdict.gain,
        gain_se=verdict.gain_se,
        leader_trial=verdict.leader.trial_number,
        table=tuple(verdict.table()),
    )
