"""When a search ends before its trial budget: nothing left that could beat the incumbent.

The robust selection keeps the declared incumbent unless a challenger beats it clearly
(:mod:`lossearch.selection.confirmation`), so sampled trials that keep scoring well below
it buy nothing: the pick will be the incumbent however many more are drawn. A
:class:`BaseStopper` looks at the search after each finished trial and says whether (and
why) to stop. In the manner of Optuna's ``BaseTerminator``, whose regret-bound idea
(Makarova et al., 2022) this follows in its simplest form: the best a further trial can
be expected to bring is compared with the noise of the score it would have to beat.

The default, :class:`NoChallengerStopper`: once ``patience`` sampled (non-recipe) trials
have finished and not one completed ``Z_CLEAR`` (1.64) standard errors above the incumbent's
validation score, the search stops: that is the gain the confirmation asks of a challenger
before it replaces the incumbent, and a single search run, the best of several, only
overstates it. A sampled trial that does come that far is a contender the confirmation runs
must judge, so the search then uses its whole budget. (A positive ``margin`` is laxer: a
trial within that many standard errors *below* the incumbent is already a contender.)

After such a stop the same bar decides what the confirmation races
(:meth:`BaseStopper.contender_bar`): a trial or recipe whose search score falls short of it
is no contender, so retraining it on more seeds would buy nothing; the incumbent is still
confirmed, its decision rule tuned on all its runs.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossearch._noise import Z_CLEAR, bootstrap_std
from lossearch.selection.roles import incumbent_record

PATIENCE = 10  # sampled trials to finish before the search may stop
# standard errors of the incumbent's score: closer is a contender (negative: a contender must
# beat the incumbent by that many). The default asks what the confirmation asks; chosen on
# development problems (docs/selection.md, "Stopping early"), where margin 1 took 1.2-2.1x as
# long for the same picks.
MARGIN = -Z_CLEAR


@dataclass(frozen=True)
class SearchProgress:
    """What a stopper sees after a trial: the completed trial records (with their
    validation predictions where this process ran them), how many sampled trials have
    finished however they ended, whether recipes are still to run, and the runner (its
    objective, task and validation targets)."""

    records: Sequence[Any]  # TrialRecord
    sampled_finished: int
    recipes_pending: bool
    runner: Any  # TrialRunner


class BaseStopper(abc.ABC):
    """Decides after each finished trial whether a search goes on."""

    @abc.abstractmethod
    def reason_to_stop(self, progress: SearchProgress) -> str | None:
        """Why the search should stop now, in one sentence, or None to go on."""

    def contender_bar(self, progress: SearchProgress) -> float | None:
        """Asked once this stopper has stopped the search: the search score a trial or recipe
        must reach to be raced against the incumbent in the confirmation, or None (the
        default) to race the usual candidates."""
        return None


class NoChallengerStopper(BaseStopper):
    """Stop once ``patience`` sampled trials have finished and none completed within
    ``margin`` standard errors of the incumbent's validation score (the default, -1.64: none
    beat it by 1.64 standard errors).

    The standard error is a bootstrap over the incumbent's validation predictions. A
    search resumed in another process has no predictions of its incumbent to bootstrap,
    so it is never stopped by this rule.

    Example:
        >>> optimize(build_model, data, early_stop=NoChallengerStopper(patience=20))
        ... # doctest: +SKIP
    """

    def __init__(self, patience: int = PATIENCE, margin: float = MARGIN):
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"patience: expected an integer >= 1, got {patience!r}.")
        if not (isinstance(margin, int | float) and math.isfinite(margin)):
            raise ValueError(f"margin: expected a finite number, got {margin!r}.")
        self.patience, self.margin = patience, float(margin)
        self._noise: dict[int, float] = {}  # the incumbent's standard error, by trial number

    def reason_to_stop(self, progress: SearchProgress) -> str | None:
        if progress.recipes_pending or progress.sampled_finished < self.patience:
            return None
        judged = self._judge(progress)
        if judged is None:
            return None
        incumbent, se, bar = judged
        sign = 1.0 if progress.runner.objective.maximize else -1.0
        sampled = [r for r in progress.records if not r.recipe]
        best = max(sampled, key=lambda r: sign * r.value, default=None)
        if best is not None and sign * (best.value - bar) >= 0:
            return None
        closest = (
            "" if best is None else f"; the closest, trial {best.number}, scored {best.value:.4f}"
        )
        return (
            f"no challenger after {progress.sampled_finished} sampled trials: none completed "
            f"{_bar(self.margin, se)} the incumbent {_name(incumbent)} "
            f"({incumbent.value:.4f}){closest}"
        )

    def contender_bar(self, progress: SearchProgress) -> float | None:
        judged = self._judge(progress)
        return None if judged is None else judged[2]

    def _judge(self, progress: SearchProgress) -> tuple[Any, float, float] | None:
        """``(incumbent, its standard error, the bar a contender reaches)``, or None when
        there is no incumbent or no predictions of it to bootstrap."""
        runner = progress.runner
        incumbent = incumbent_record(progress.records, runner.objective, runner.data.task)
        if incumbent is None:
            return None
        se = self._standard_error(incumbent, runner)
        if not math.isfinite(se):
            return None
        sign = 1.0 if runner.objective.maximize else -1.0
        return incumbent, se, incumbent.value - sign * self.margin * se

    def _standard_error(self, incumbent, runner) -> float:
        if incumbent.number not in self._noise:
            if incumbent.scores is None:
                return math.nan
            y_true, scores = runner.data.validation_targets, np.asarray(incumbent.scores)
            self._noise[incumbent.number] = bootstrap_std(
                lambda idx: runner.objective(y_true[idx], scores[idx], **runner.context),
                len(y_true),
            )
        return self._noise[incumbent.number]


def _bar(margin: float, se: float) -> str:
    """How close a contender had to come, in words: within a margin short of the incumbent's
    score, or better than it by a margin (a negative one)."""
    errors = f"{abs(margin):g} standard error{'' if abs(margin) == 1 else 's'} ({se:.4f})"
    return f"within {errors} of" if margin >= 0 else f"{errors} better than"


def _name(record) -> str:
    return f"recipe {record.recipe!r}" if record.recipe else f"trial {record.number}"


def default_stopper(early_stop) -> BaseStopper | None:
    """``optimize``'s ``early_stop``: True the default rule, False none, or a stopper."""
    if isinstance(early_stop, BaseStopper):
        return early_stop
    return NoChallengerStopper() if early_stop else None
