"""Minority-class metrics (computed with scikit-learn) and the search objectives.

:func:`evaluate` turns validation labels and predicted probabilities into one
:class:`Metrics` record; an :class:`Objective` reads a number from it (or
computes its own from the raw predictions).

Labels are class indices (multiclass), 0/1 per sample (binary: ``(n, 1)``) or
0/1 per label (multi-label); probabilities are ``(n, C)`` (binary: ``(n, 1)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

from lossearch._validation import takes_positional

# objective name -> direction; every name is a key of Metrics.summary
OBJECTIVES: dict[str, str] = {
    "balanced_accuracy": "maximize",
    "macro_f1": "maximize",
    "minority_recall": "maximize",
    "minority_f1": "maximize",
    "worst_class_recall": "maximize",
    "g_mean": "maximize",
    "mcc": "maximize",
    "pr_auc": "maximize",
    "macro_pr_auc": "maximize",
}
DEFAULT_OBJECTIVE = {
    "multiclass": "balanced_accuracy",
    "binary": "pr_auc",
    "multilabel": "macro_pr_auc",
}


@dataclass
class Metrics:
    """Scalar summaries and per-class precision / recall / F1 / support / AP."""

    summary: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]] = field(default_factory=list)

    def flat(self) -> dict[str, float]:
        """``{"balanced_accuracy": .., "recall.<class>": .., ...}`` for logging."""
        out = dict(self.summary)
        for name, values in self.per_class.items():
            for key in ("precision", "recall", "f1", "ap"):
                out[f"{key}.{name}"] = values[key]
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary, "per_class": self.per_class, "confusion": self.confusion}


@dataclass(frozen=True)
class Objective:
    """What a trial maximises or minimises.

    Either a name of :data:`OBJECTIVES` or ``fn(y_true, y_prob) -> float``.

    Example:
        >>> from sklearn.metrics import log_loss
        >>> obj = Objective("log_loss", "minimize", fn=lambda y, p: log_loss(y, p))
    """

    name: str
    direction: str = "maximize"
    fn: Callable | None = None

    def __call__(self, y_true, y_prob, metrics: Metrics | None = None, **context) -> float:
        if self.fn is not None:
            return float(self.fn(y_true, y_prob))
        if metrics is not None:
            return float(metrics.summary[self.name])
        return scalar_metric(self.name, y_true, y_prob, **context)


def resolve_objective(objective, task: str) -> Objective:
    """An :class:`Objective` from ``None`` (the task's default), a name, a callable,
    ``(callable, direction)`` or an ``Objective``."""
    if objective is None:
        return Objective(DEFAULT_OBJECTIVE[task], "maximize")
    if isinstance(objective, Objective):
        if objective.direction not in ("maximize", "minimize"):
            raise ValueError(
                "objective: direction must be 'maximize' or 'minimize', got "
                f"{objective.direction!r}."
            )
        return objective
    if isinstance(objective, str):
        if objective not in OBJECTIVES:
            raise ValueError(
                f"objective: unknown objective {objective!r}; expected one of: "
                f"{', '.join(OBJECTIVES)}, or a callable f(y_true, y_prob) -> float."
            )
        return Objective(objective, OBJECTIVES[objective])
    if isinstance(objective, tuple) and len(objective) == 2 and callable(objective[0]):
        fn, direction = objective
        return resolve_objective(Objective(_fn_name(fn), direction, fn), task)
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


def _fn_name(fn) -> str:
    return getattr(fn, "__name__", "custom").strip("<>") or "custom"


def default_minority_classes(class_counts: Sequence[int], task: str) -> list[int]:
    """Classes whose training count is below the median (binary: the rarer class)."""
    counts = np.asarray(class_counts)
    if task == "binary":
        return [int(np.argmin(counts))]
    below = np.flatnonzero(counts < np.median(counts))
    return below.tolist() if below.size else [int(np.argmin(counts))]


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def _normalized(y_true, y_prob, task):
    """``(y_true, y_prob, y_pred)`` with binary expanded to two columns."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=np.float64)
    if task == "binary":
        p1 = y_prob.reshape(-1)
        return y_true.reshape(-1), np.stack([1.0 - p1, p1], axis=1), (p1 >= 0.5).astype(int)
    if task == "multilabel":
        return y_true, y_prob, (y_prob >= 0.5).astype(int)
    return y_true, y_prob, y_prob.argmax(-1)


def _per_class_prf(y_true, y_pred, task, num_classes):
    labels = None if task == "multilabel" else np.arange(num_classes)
    return skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)


def _column(y_true, c, task):
    return y_true[:, c] if task == "multilabel" else (y_true == c)


def _aps(y_true, y_prob, task, classes):
    return np.array([_average_precision(_column(y_true, c, task), y_prob[:, c]) for c in classes])


def _mcc(y_true, y_pred, task):
    if task == "multilabel":
        return float(
            np.mean(
                [skm.matthews_corrcoef(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])]
            )
        )
    return float(skm.matthews_corrcoef(y_true, y_pred))


def _balanced_accuracy(recall, support, y_true, y_pred, task):
    if task == "multilabel":  # mean over labels of each label's balanced accuracy
        return float(
            np.mean(
                [
                    skm.balanced_accuracy_score(y_true[:, j], y_pred[:, j])
                    for j in range(y_true.shape[1])
                ]
            )
        )
    return float(np.mean(recall[support > 0]))


def scalar_metric(name, y_true, y_prob, *, task, class_names, minority_classes) -> float:
    """One summary metric, computing only what it needs (per epoch, in bootstraps)."""
    y_true, y_prob, y_pred = _normalized(y_true, y_prob, task)
    minority = list(minority_classes)
    if name in ("pr_auc", "macro_pr_auc"):
        classes = minority if name == "pr_auc" else range(len(class_names))
        return float(np.nanmean(_aps(y_true, y_prob, task, classes)))
    if name == "mcc":
        return _mcc(y_true, y_pred, task)
    _, recall, f1, support = _per_class_prf(y_true, y_pred, task, len(class_names))
    return float(
        {
            "balanced_accuracy": lambda: _balanced_accuracy(recall, support, y_true, y_pred, task),
            "macro_f1": lambda: f1.mean(),
            "minority_recall": lambda: recall[minority].mean(),
            "minority_f1": lambda: f1[minority].mean(),
            "worst_class_recall": lambda: recall[support > 0].min(),
            "g_mean": lambda: _g_mean(recall[support > 0]),
        }[name]()
    )


def evaluate(
    y_true,
    y_prob,
    *,
    task: str,
    class_names: Sequence[str],
    minority_classes: Sequence[int],
) -> Metrics:
    """All metrics of one set of predictions (see the module docstring for shapes)."""
    y_true, y_prob, y_pred = _normalized(y_true, y_prob, task)
    precision, recall, f1, support = _per_class_prf(y_true, y_pred, task, len(class_names))
    ap = _aps(y_true, y_prob, task, range(len(class_names)))
    minority = list(minority_classes)
    if task == "multilabel":
        confidence, correct = np.maximum(y_prob, 1 - y_prob).ravel(), (y_pred == y_true).ravel()
        confusion = []
    else:
        confidence, correct = y_prob.max(-1), y_pred == y_true
        confusion = skm.confusion_matrix(
            y_true, y_pred, labels=np.arange(len(class_names))
        ).tolist()
    summary = {
        "balanced_accuracy": _balanced_accuracy(recall, support, y_true, y_pred, task),
        "macro_f1": float(f1.mean()),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),  # multi-label: exact match
        "mcc": _mcc(y_true, y_pred, task),
        "g_mean": _g_mean(recall[support > 0]),
        "worst_class_recall": float(recall[support > 0].min()),
        "minority_recall": float(recall[minority].mean()),
        "minority_f1": float(f1[minority].mean()),
        "pr_auc": float(np.nanmean(ap[minority])),
        "macro_pr_auc": float(np.nanmean(ap)),
        "ece": expected_calibration_error(confidence, correct),
    }
    return Metrics(summary, _per_class(class_names, precision, recall, f1, support, ap), confusion)


def _average_precision(y_true, score) -> float:
    if not np.any(y_true):
        return float("nan")
    return float(skm.average_precision_score(y_true, score))


def _g_mean(recalls) -> float:
    recalls = np.asarray(recalls, dtype=np.float64)
    if np.any(recalls == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(recalls))))


def _per_class(names, precision, recall, f1, support, ap):
    return {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "ap": float(ap[i]),
        }
        for i, name in enumerate(names)
    }


def resolve_minority_classes(
    minority_classes, class_names: list[str], counts, task: str
) -> list[int]:
    """Class indices from names or indices; ``None`` for :func:`default_minority_classes`."""
    if minority_classes is None:
        return default_minority_classes(counts, task)
    if (
        not isinstance(minority_classes, Sequence)
        or isinstance(minority_classes, str)
        or not minority_classes
    ):
        raise ValueError("minority_classes: expected a non-empty list of class indices or names.")
    indices = []
    for item in minority_classes:
        if isinstance(item, str) and item in class_names:
            indices.append(class_names.index(item))
        elif isinstance(item, int | np.integer) and 0 <= int(item) < len(class_names):
            indices.append(int(item))
        else:
            raise ValueError(
                f"minority_classes: {item!r} is neither a class index in [0, {len(class_names)}) "
                f"nor one of the class names {class_names}."
            )
    return sorted(set(indices))
