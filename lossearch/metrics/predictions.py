"""One set of validation predictions, normalised once, with what every metric reads from it.

Labels are class indices (multiclass), 0/1 per sample (binary: ``(n, 1)``) or 0/1 per
label (multi-label); probabilities are ``(n, C)`` (binary: ``(n, 1)``, expanded here to
two columns). Per-class precision, recall and F1 and each class's average precision are
computed on first use, so that one metric scored per epoch computes only what it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np


class Predictions:
    """``y_true`` and ``y_prob`` of one task, with the decisions (arg-max or ``>= 0.5``)."""

    def __init__(
        self,
        y_true,
        y_prob,
        *,
        task: str,
        class_names: Sequence[str],
        minority_classes: Sequence[int],
    ):
        y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=np.float64)
        if task == "binary":
            p1 = y_prob.reshape(-1)
            y_true, y_prob = y_true.reshape(-1), np.stack([1.0 - p1, p1], axis=1)
            y_pred = (p1 >= 0.5).astype(int)
        elif task == "multilabel":
            y_pred = (y_prob >= 0.5).astype(int)
        else:
            y_pred = y_prob.argmax(-1)
        self.y_true, self.y_prob, self.y_pred = y_true, y_prob, y_pred
        self.task, self.class_names = task, list(class_names)
        self.minority = list(minority_classes)
        self._ap: dict[int, float] = {}

    @cached_property
    def per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(precision, recall, f1, support)`` per class (label), zero where undefined:
        scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)``, counted
        directly (it is scored after every epoch, where scikit-learn's input checks cost
        more than the counting)."""
        if self.task == "multilabel":
            truth, picked = self.y_true.astype(bool), self.y_pred.astype(bool)
            hits = (truth & picked).sum(0)
            predicted, support = picked.sum(0), truth.sum(0)
        else:
            k = len(self.class_names)
            truth, picked = self.y_true.astype(np.int64), self.y_pred.astype(np.int64)
            hits = np.bincount(truth[truth == picked], minlength=k)[:k]
            predicted = np.bincount(picked, minlength=k)[:k]
            support = np.bincount(truth, minlength=k)[:k]
        precision = _ratio(hits, predicted)
        recall = _ratio(hits, support)
        f1 = _ratio(2 * hits, predicted + support)
        return precision, recall, f1, support

    @property
    def recall(self) -> np.ndarray:
        return self.per_class[1]

    @property
    def f1(self) -> np.ndarray:
        return self.per_class[2]

    @property
    def present(self) -> np.ndarray:
        """Classes with at least one validation sample (labels with a positive)."""
        return self.per_class[3] > 0

    def average_precision(self, classes: Sequence[int] | range) -> np.ndarray:
        """Average precision of each of ``classes`` (NaN for a class without positives)."""
        for c in classes:
            if c not in self._ap:
                column = self.y_true[:, c] if self.task == "multilabel" else self.y_true == c
                self._ap[c] = average_precision(column, self.y_prob[:, c])
        return np.array([self._ap[c] for c in classes], dtype=np.float64)

    def per_label(self, score) -> float:
        """Multi-label: the mean over labels of ``score(y_true_j, y_pred_j)``."""
        return float(
            np.mean(
                [score(self.y_true[:, j], self.y_pred[:, j]) for j in range(self.y_true.shape[1])]
            )
        )


def average_precision(y_true, score) -> float:
    """scikit-learn's ``average_precision_score`` (precision at each distinct threshold,
    weighted by the recall it adds), computed directly: a search scores it for every class
    of every trial, and scikit-learn's input checks cost more than the sum (1000 classes:
    seconds a trial). NaN without positives."""
    y_true = np.asarray(y_true).reshape(-1) > 0
    if not y_true.any():
        return float("nan")
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    order = np.argsort(-score, kind="mergesort")
    score, y_true = score[order], y_true[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # each threshold's last sample
    hits = np.cumsum(y_true)[last]
    precision = hits / (last + 1)
    recall_gain = np.diff(np.r_[0, hits]) / hits[-1]
    return float(np.sum(recall_gain * precision))


def geometric_mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    if np.any(values == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(values))))


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


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
