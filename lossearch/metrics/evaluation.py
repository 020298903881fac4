"""Minority-class metrics of a finished trial, computed with scikit-learn.

:func:`evaluate` turns validation labels and predicted probabilities (shapes:
:mod:`lossearch.metrics.predictions`) into one :class:`Metrics` record: every registered
objective (:data:`lossearch.metrics.objectives.OBJECTIVES`), accuracy and calibration,
and per-class precision, recall, F1, support and average precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lossearch.metrics.objectives import OBJECTIVES
from lossearch.metrics.predictions import Predictions, expected_calibration_error


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
            for key in PER_CLASS_KEYS:
                out[f"{key}.{name}"] = values[key]
        return out

    def to_dict(self) -> dict:
        return {"summary": self.summary, "per_class": self.per_class, "confusion": self.confusion}


# what each class gets (besides its support), in the order tables show them
PER_CLASS_KEYS = ("recall", "precision", "f1", "ap")
# the ones a text summary has room for
PER_CLASS_SHORT = ("recall", "f1", "ap")


def default_minority_classes(class_counts: Sequence[int], task: str) -> list[int]:
    """Classes whose training count is below the median (binary: the rarer class)."""
    counts = np.asarray(class_counts)
    if task == "binary":
        return [int(np.argmin(counts))]
    below = np.flatnonzero(counts < np.median(counts))
    return below.tolist() if below.size else [int(np.argmin(counts))]


def evaluate(
    y_true,
    y_prob,
    *,
    task: str,
    class_names: Sequence[str],
    minority_classes: Sequence[int],
) -> Metrics:
    """All metrics of one set of predictions."""
    from sklearn import metrics as skm  # loaded when first scored

    p = Predictions(
        y_true, y_prob, task=task, class_names=class_names, minority_classes=minority_classes
    )
    summary = {name: float(objective.metric(p)) for name, objective in OBJECTIVES.items()}
    summary["accuracy"] = float(skm.accuracy_score(p.y_true, p.y_pred))  # multi-label: exact
    if task == "multilabel":
        confidence = np.maximum(p.y_prob, 1 - p.y_prob).ravel()
        correct, confusion = (p.y_pred == p.y_true).ravel(), []
    else:
        confidence, correct = p.y_prob.max(-1), p.y_pred == p.y_true
        confusion = skm.confusion_matrix(
            p.y_true, p.y_pred, labels=np.arange(len(class_names))
        ).tolist()
    summary["ece"] = expected_calibration_error(confidence, correct)
    precision, recall, f1, support = p.per_class
    ap = p.average_precision(range(len(class_names)))
    per_class = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "ap": float(ap[i]),
        }
        for i, name in enumerate(class_names)
    }
    return Metrics(summary, per_class, confusion)


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
