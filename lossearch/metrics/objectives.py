"""What a trial is scored on: the registry of objectives, one entry each.

An :class:`Objective` says everything the search needs to know about a metric, so that
nothing else keeps a list of names: its direction and how to compute it; whether it
averages over classes (then logit adjustment, its Bayes-consistent loss, is the
multiclass incumbent: :mod:`lossearch.selection`); how a binary decision threshold is
tuned for it (:mod:`lossearch.decision`); its streaming Keras metric (epoch logs and the
Keras Tuner path); and whether summaries show it beside the CE baseline.

Adding an objective is one :data:`OBJECTIVES` entry (plus its test in
``tests/test_objectives.py``): :func:`lossearch.metrics.evaluate` computes it for every
trial, ``objective=`` and ``--objective`` accept it, and selection, the decision rule,
the reports and Keras Tuner read its fields.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from lossearch._validation import takes_positional
from lossearch.decision import THRESHOLD_RULES
from lossearch.metrics.predictions import Predictions, geometric_mean

DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Objective:
    """What a trial maximises or minimises, and what that implies for the search.

    A registered objective (:data:`OBJECTIVES`) has a ``metric`` computed from shared
    per-class counts; your own has ``fn(y_true, y_prob) -> float``. ``Objective(name)``
    with a registered name is that entry.

    Args:
        name: its name, in logs (``val_<name>``) and reports.
        direction: ``"maximize"`` or ``"minimize"``.
        fn: your own ``fn(y_true, y_prob) -> float`` (shapes: :mod:`.predictions`).
        metric: a registered objective's ``metric(Predictions) -> float``.
        class_averaged: a mean over classes (balanced accuracy, macro F1, ...): on a
            multiclass task the logit-adjusted loss is then the incumbent to beat.
        threshold_rule: how a binary / multi-label decision threshold is tuned for it:
            ``"balanced_log_loss"`` (the smooth, proper counterpart of a class-averaged
            or ranking metric) or ``"f1"`` (F1 on validation, for F1 objectives).
        streaming: its class in :mod:`lossearch.metrics.streaming`, if it has one.
        in_summary: shown in summaries and reports beside the CE baseline.

    Example:
        >>> from sklearn.metrics import log_loss
        >>> obj = Objective("log_loss", "minimize", fn=lambda y, p: log_loss(y, p))
        >>> Objective("macro_f1").threshold_rule
        'f1'
    """

    name: str
    direction: str = "maximize"
    fn: Callable | None = None
    metric: Callable[[Predictions], float] | None = None
    class_averaged: bool = False
    threshold_rule: str = "balanced_log_loss"
    streaming: str | None = None
    in_summary: bool = False

    def __post_init__(self):
        if self.fn is None and self.metric is None:  # a registered name
            if self.name not in OBJECTIVES:
                raise ValueError(_unknown(self.name))
            for field in fields(self):
                if field.name not in ("name", "direction"):
                    object.__setattr__(self, field.name, getattr(OBJECTIVES[self.name], field.name))
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"objective: direction must be 'maximize' or 'minimize', got {self.direction!r}."
            )
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ValueError(
                f"objective: threshold_rule must be one of {list(THRESHOLD_RULES)}, got "
                f"{self.threshold_rule!r}."
            )

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def __call__(self, y_true, y_prob, metrics: Any = None, **context) -> float:
        """The objective of these predictions; ``metrics`` (a :class:`Metrics` of them)
        saves recomputing a registered one; ``context`` is task, class_names and
        minority_classes."""
        if self.fn is not None:
            return float(self.fn(y_true, y_prob))
        if metrics is not None and self.name in metrics.summary:
            return float(metrics.summary[self.name])
        return float(self.metric(Predictions(y_true, y_prob, **context)))

    def streaming_metric(
        self, num_classes: int, minority_classes: Sequence[int], from_logits: bool = False
    ):
        """Its streaming Keras metric for a single-label task, or None when it has none."""
        if self.streaming is None:
            return None
        streaming = importlib.import_module("lossearch.metrics.streaming")
        return getattr(streaming, self.streaming).for_classes(
            num_classes, minority_classes, from_logits
        )


# The metrics, module-level functions so that a registered objective pickles (a trial
# runner travels to its child process with recycle_every).


def _balanced_accuracy(p: Predictions) -> float:
    from sklearn import metrics as skm  # loaded when first scored

    if p.task == "multilabel":  # the mean over labels of each label's balanced accuracy
        return p.per_label(skm.balanced_accuracy_score)
    return float(np.mean(p.recall[p.present]))


def _macro_f1(p: Predictions) -> float:
    return float(p.f1.mean())


def _minority_recall(p: Predictions) -> float:
    return float(p.recall[p.minority].mean())


def _minority_f1(p: Predictions) -> float:
    return float(p.f1[p.minority].mean())


def _worst_class_recall(p: Predictions) -> float:
    return float(p.recall[p.present].min())


def _g_mean(p: Predictions) -> float:
    return geometric_mean(p.recall[p.present])


def _mcc(p: Predictions) -> float:
    from sklearn import metrics as skm  # loaded when first scored

    if p.task == "multilabel":
        return p.per_label(skm.matthews_corrcoef)
    return float(skm.matthews_corrcoef(p.y_true, p.y_pred))


def _pr_auc(p: Predictions) -> float:
    """Average precision of the minority classes."""
    return float(np.nanmean(p.average_precision(p.minority)))


def _macro_pr_auc(p: Predictions) -> float:
    return float(np.nanmean(p.average_precision(range(len(p.class_names)))))


# name: the entry. Class-averaged objectives get the logit-adjusted incumbent (multiclass);
# F1 objectives an F1 threshold; those with a streaming class reach Keras Tuner's logs.
OBJECTIVES: dict[str, Objective] = {}  # filled below; Objective(name) reads it
for _entry in (
    Objective("balanced_accuracy", metric=_balanced_accuracy, class_averaged=True,
              streaming="BalancedAccuracy", in_summary=True),
    Objective("macro_f1", metric=_macro_f1, class_averaged=True, threshold_rule="f1",
              streaming="MacroF1", in_summary=True),
    Objective("minority_recall", metric=_minority_recall, class_averaged=True,
              streaming="MinorityRecall", in_summary=True),
    Objective("minority_f1", metric=_minority_f1, class_averaged=True, threshold_rule="f1"),
    Objective("worst_class_recall", metric=_worst_class_recall, class_averaged=True,
              streaming="WorstClassRecall", in_summary=True),
    Objective("g_mean", metric=_g_mean, class_averaged=True, streaming="GMean"),
    Objective("mcc", metric=_mcc),
    Objective("pr_auc", metric=_pr_auc, in_summary=True),
    Objective("macro_pr_auc", metric=_macro_pr_auc),
):  # fmt: skip
    OBJECTIVES[_entry.name] = _entry

DEFAULT_OBJECTIVE = {
    "multiclass": "balanced_accuracy",
    "binary": "pr_auc",
    "multilabel": "macro_pr_auc",
}


def summary_metrics(objective: str) -> list[str]:
    """The summary metrics a report shows beside the CE baseline: the registered ones
    marked ``in_summary``, and the search's own objective when it is registered."""
    shown = [name for name, o in OBJECTIVES.items() if o.in_summary]
    return shown + [objective] if objective in OBJECTIVES and objective not in shown else shown


def scalar_metric(name: str, y_true, y_prob, **context) -> float:
    """One registered metric of these predictions, computing only what it needs."""
    return OBJECTIVES[name](y_true, y_prob, **context)


def resolve_objective(objective, task: str) -> Objective:
    """An :class:`Objective` from ``None`` (the task's default), a name, a callable,
    ``(callable, direction)`` or an ``Objective``."""
    if objective is None:
        return OBJECTIVES[DEFAULT_OBJECTIVE[task]]
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, str):
        if objective not in OBJECTIVES:
            raise ValueError(_unknown(objective))
        return OBJECTIVES[objective]
    if isinstance(objective, tuple) and len(objective) == 2 and callable(objective[0]):
        fn, direction = objective
        return Objective(_fn_name(fn), direction, fn)
    if callable(objective):
        if not takes_positional(objective, 2):
            raise ValueError(
                f"objective: {_fn_name(objective)} must take two arguments, "
                "f(y_true, y_prob) -> float."
            )
        return Objective(_fn_name(objective), "maximize", objective)
    raise ValueError(
        "objective: expected a name, a callable f(y_true, y_prob) -> float, (callable, "
        f"'maximize'|'minimize') or lossearch.metrics.Objective, got {type(objective).__name__}."
    )


def _unknown(name: str) -> str:
    return (
        f"objective: unknown objective {name!r}; expected one of: {', '.join(OBJECTIVES)}, "
        "or a callable f(y_true, y_prob) -> float."
    )


def _fn_name(fn) -> str:
    return getattr(fn, "__name__", "custom").strip("<>") or "custom"
