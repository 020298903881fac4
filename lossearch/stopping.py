"""When a search ends before its trial budget: nothing left that could beat the incumbent.

The robust selection keeps the declared incumbent unless a challenger beats it clearly
(:mod:`lossearch.selection.confirmation`), so sampled trials that keep scoring well below
it buy nothing: the pick will be the incumbent however many more are drawn. A
:class:`BaseStopper` looks at the search after each finished trial and says whether (and
why) to stop. In the manner of Optuna's ``BaseTerminator``, whose regret-bound idea
(Makarova et al., 2022) this follows in its simplest form: the best a further trial can
be expected to bring is compared with the noise of the score it would have to beat.

The default, :class:`NoChallengerStopper`: once ``patience`` sampled (non-recipe) trials
have finished (or, with ``evidence="epochs"``, once sampled trials have trained as many
epochs as ``patience`` whole trainings, pruned trials counting the epochs they ran) and
not one completed ``Z_CLEAR`` (1.64) standard errors above the
incumbent's validation score, the search stops. The standard error is that of the trial's
*paired* gain (both predictions resampled together), the part of the confirmation's
standard error one search run can measure: a trial short of it on its search run, the best
of several, is not expected to clear the confirmation, which adds seed-to-seed variance. A
sampled trial that does come that far is a contender the confirmation runs must judge, so
the search then uses its whole budget. (A positive ``margin`` is laxer: a trial within that
many standard errors *below* the incumbent is already a contender.)

After such a stop the same test decides what the confirmation races
(:meth:`BaseStopper.contenders`): a recipe or trial that is no contender is set aside,
since retraining it on more seeds would buy nothing; the incumbent is still confirmed, its
decision rule tuned on all its runs.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossearch._noise import Z_CLEAR, paired_std
from lossearch.selection.roles import incumbent_record

PATIENCE = 10  # sampled trials to finish before the search may stop
# What patience counts: finished sampled trials, or their epochs in whole trainings. A pruned
# trial is little evidence where the winners start slowly (docs/stopping.md).
EVIDENCE = ("trials", "epochs")
# standard errors of a trial's paired gain over the incumbent: closer is a contender
# (negative: a contender must beat the incumbent by that many). The default asks what the
# confirmation asks (docs/stopping.md).
MARGIN = -Z_CLEAR


@dataclass(frozen=True)
class SearchProgress:
    """What a stopper sees after a trial: the completed trial records (with their
    validation predictions where this process ran them), how many sampled trials have
    finished however they ended, whether recipes are still to run, and the runner (its
    objective, task and validation targets). ``sampled_trainings``: the epochs those
    sampled trials trained, over the epochs of one whole training (every fold's)."""

    records: Sequence[Any]  # TrialRecord
    sampled_finished: int
    recipes_pending: bool
    runner: Any  # TrialRunner
    sampled_trainings: float = 0.0


class BaseStopper(abc.ABC):
    """Decides after each finished trial whether a search goes on."""

    @abc.abstractmethod
    def reason_to_stop(self, progress: SearchProgress) -> str | None:
        """Why the search should stop now, in one sentence, or None to go on."""

    def contenders(self, progress: SearchProgress) -> list[int] | None:
        """Asked once this stopper has stopped the search: the numbers of the trials (recipes
        included) the confirmation may race against the incumbent, or None (the default) to
        race the usual candidates."""
        return None


@dataclass(frozen=True)
class _Gain:
    """A trial's gain over the incumbent (positive: better) and that gain's standard error
    (NaN when not measured: no predictions of the trial here, or a gain that cannot
    contend whatever its noise)."""

    record: Any
    gain: float
    se: float

    @property
    def errors(self) -> float:
        """The gain in standard errors (NaN when its standard error is zero or not measured)."""
        return self.gain / self.se if self.se > 0 else math.nan


class NoChallengerStopper(BaseStopper):
    """Stop once ``patience`` sampled trials have finished and none completed within
    ``margin`` standard errors of the incumbent's validation score (the default, -1.64: none
    beat it by 1.64 standard errors). With ``evidence="epochs"``, patience counts the epochs
    the sampled trials trained, in whole trainings: ten trials pruned after one epoch of
    twelve count as less than one.

    Each trial's standard error is a paired bootstrap of its gain over the incumbent on the
    validation predictions, as in the confirmation. A search resumed in another process has
    no predictions of its incumbent and is never stopped by this rule; a trial run by
    another worker, whose predictions are not here, is a contender when it beat the
    incumbent at all.

    Example:
        >>> optimize(build_model, data, early_stop=NoChallengerStopper(patience=20))
        ... # doctest: +SKIP
        >>> stopper = NoChallengerStopper(evidence="epochs")  # ten whole trainings' epochs
    """

    def __init__(self, patience: int = PATIENCE, margin: float = MARGIN, evidence: str = "trials"):
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"patience: expected an integer >= 1, got {patience!r}.")
        if not (isinstance(margin, int | float) and math.isfinite(margin)):
            raise ValueError(f"margin: expected a finite number, got {margin!r}.")
        if evidence not in EVIDENCE:
            raise ValueError(f"evidence: expected one of {EVIDENCE}, got {evidence!r}.")
        self.patience, self.margin, self.evidence = patience, float(margin), evidence
        self._noise: dict[tuple[int, int], float] = {}  # by (trial, incumbent) number

    def reason_to_stop(self, progress: SearchProgress) -> str | None:
        if progress.recipes_pending or self._evidence(progress) < self.patience:
            return None
        incumbent = self._incumbent(progress)
        if incumbent is None:
            return None
        runner = progress.runner
        sampled = [self._gain(r, incumbent, runner) for r in progress.records if not r.recipe]
        if any(self._contends(g) for g in sampled):
            return None
        closest = max(sampled, key=lambda g: g.gain, default=None)
        trainings = (
            f", {progress.sampled_trainings:.1f} whole trainings' epochs"
            if self.evidence == "epochs"
            else ""
        )
        return (
            f"no challenger after {progress.sampled_finished} sampled trials "
            f"({len(sampled)} completed, the others pruned or failed{trainings}): none completed "
            f"{_bar(self.margin)} the recipe to beat, {_name(incumbent)} ({incumbent.value:.4f})"
            + ("" if closest is None else f"; the closest, {_closest(closest)}")
        )

    def contenders(self, progress: SearchProgress) -> list[int] | None:
        incumbent = self._incumbent(progress)
        if incumbent is None:
            return None
        gains = (self._gain(r, incumbent, progress.runner) for r in progress.records)
        return [g.record.number for g in gains if g.record is incumbent or self._contends(g)]

    def _evidence(self, progress: SearchProgress) -> float:
        if self.evidence == "epochs":
            return progress.sampled_trainings
        return progress.sampled_finished

    def _incumbent(self, progress: SearchProgress):
        """The incumbent's record, or None when there is none or no predictions of it."""
        runner = progress.runner
        incumbent = incumbent_record(progress.records, runner.objective, runner.data.task)
        return None if incumbent is None or incumbent.scores is None else incumbent

    def _contends(self, g: _Gain) -> bool:
        if math.isnan(g.se):  # noise not measured: any gain contends
            return g.gain > 0
        bar = -self.margin * g.se
        return g.gain >= bar if bar < 0 else g.gain > bar  # a twin's 0 gain never contends

    def _gain(self, record, incumbent, runner) -> _Gain:
        sign = 1.0 if runner.objective.maximize else -1.0
        gain = sign * (record.value - incumbent.value)
        cannot_contend = self.margin < 0 and gain <= 0  # whatever its noise
        if record is incumbent or record.scores is None or cannot_contend:
            return _Gain(record, gain, math.nan)
        key = (record.number, incumbent.number)
        if key not in self._noise:
            objective, context = runner.objective, runner.context
            self._noise[key] = paired_std(
                lambda y, p: objective(y, p, **context),
                runner.data.validation_targets,
                [np.asarray(record.scores)],
                [np.asarray(incumbent.scores)],
            )
        return _Gain(record, gain, self._noise[key])


def _bar(margin: float) -> str:
    """How close a contender had to come, in words: within a margin short of the incumbent's
    score, or better than it by a margin (a negative one)."""
    errors = f"{abs(margin):g} standard error{'' if abs(margin) == 1 else 's'} of its paired gain"
    return f"within {errors} of" if margin >= 0 else f"{errors} better than"


def _closest(g: _Gain) -> str:
    """The sampled trial that came nearest, with its gain in standard errors where known."""
    errors = f", {g.errors:+.2f} standard errors" if math.isfinite(g.errors) else ""
    return f"{_name(g.record)}, scored {g.record.value:.4f} ({g.gain:+.4f}{errors})"


def _name(record) -> str:
    return f"recipe {record.recipe!r}" if record.recipe else f"trial {record.number}"


def default_stopper(early_stop) -> BaseStopper | None:
    """``optimize``'s ``early_stop``: True the default rule, False none, or a stopper."""
    if isinstance(early_stop, BaseStopper):
        return early_stop
    return NoChallengerStopper() if early_stop else None
