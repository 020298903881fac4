"""Streaming minority-class metrics as ``keras.metrics.Metric`` classes.

Each holds a ``(C, C)`` confusion matrix (rows: true class, columns: predicted)
accumulated over batches, written with ``keras.ops`` only, so it runs on every
backend and can be read from the epoch logs by Keras Tuner or a pruning callback.
Labels may be sparse class indices, one-hot, or 0/1 for a single sigmoid/logit
output (``num_classes=2``: a positive prediction is ``y_pred > threshold``).

Example:
    >>> model.compile(optimizer="adam", loss=loss,                       # doctest: +SKIP
    ...               metrics=[BalancedAccuracy(10), MinorityRecall(10, [8, 9])])
"""

from __future__ import annotations

import math

import keras
from keras import ops

from lossearch._validation import Interval, check


class ConfusionMatrixMetric(keras.metrics.Metric):
    """Base class: accumulates the confusion matrix; subclasses read it in ``result``.

    Args:
        num_classes: classes (2 for a binary single-output model).
        threshold: for a single binary output, the probability that cuts between the
            classes.
        from_logits: the single output is a logit (no sigmoid): it is compared with the
            threshold's logit (0.0 for 0.5).
    """

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.5,
        name=None,
        dtype=None,
        from_logits: bool = False,
    ):
        super().__init__(name=name, dtype=dtype)
        check("num_classes", num_classes, [Interval(int, 2, None)])
        self.num_classes = int(num_classes)
        self.threshold = float(threshold)
        self.from_logits = bool(from_logits)
        if self.from_logits:
            check("threshold", self.threshold, [Interval(float, 0, 1, True, True)])
        # the cut in the output's own units
        self.cut = math.log(self.threshold / (1 - self.threshold)) if from_logits else threshold
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", name="confusion", dtype="float32"
        )

    @classmethod
    def for_classes(cls, num_classes: int, minority_classes, from_logits: bool = False):
        """This metric for a task's classes (``minority_classes`` where it reads them)."""
        return cls(num_classes, from_logits=from_logits)

    def _class_indices(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if y_pred.shape[-1] == 1 or len(y_pred.shape) == 1:  # one sigmoid / logit unit
            predicted = ops.cast(ops.reshape(y_pred, (-1,)) > self.cut, "int32")
            # integer labels too: Keras compares tensors of one dtype only
            actual = ops.cast(ops.cast(ops.reshape(y_true, (-1,)), "float32") > 0.5, "int32")
            return actual, predicted
        predicted = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]:
            actual = ops.reshape(ops.argmax(y_true, axis=-1), (-1,))  # one-hot
        else:
            actual = ops.reshape(y_true, (-1,))
        return ops.cast(actual, "int32"), ops.cast(predicted, "int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        actual, predicted = self._class_indices(y_true, y_pred)
        true_hot = ops.one_hot(actual, self.num_classes, dtype="float32")
        pred_hot = ops.one_hot(predicted, self.num_classes, dtype="float32")
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
            true_hot = true_hot * weight
        self.confusion.assign_add(ops.matmul(ops.transpose(true_hot), pred_hot))

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    # -- what the confusion matrix says ------------------------------------------------

    def _support(self):
        return ops.sum(self.confusion, axis=1)

    def _recalls(self):
        support = self._support()
        return ops.diagonal(self.confusion) / ops.maximum(support, 1.0)

    def _mean_over(self, values, mask):
        mask = ops.cast(mask, "float32")
        return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "threshold": self.threshold,
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
        }


def _register(cls):
    return keras.saving.register_keras_serializable(package="lossearch")(cls)


@_register
class BalancedAccuracy(ConfusionMatrixMetric):
    """Mean recall over the classes present so far (scikit-learn's ``balanced_accuracy_score``)."""

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.5,
        name="balanced_accuracy",
        dtype=None,
        from_logits=False,
    ):
        super().__init__(num_classes, threshold, name=name, dtype=dtype, from_logits=from_logits)

    def result(self):
        return self._mean_over(self._recalls(), self._support() > 0)


@_register
class MacroF1(ConfusionMatrixMetric):
    """Unweighted mean F1 over the classes seen as true or predicted.

    Equals scikit-learn's ``f1_score(average="macro")``.
    """

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.5,
        name="macro_f1",
        dtype=None,
        from_logits=False,
    ):
        super().__init__(num_classes, threshold, name=name, dtype=dtype, from_logits=from_logits)

    def result(self):
        tp = ops.diagonal(self.confusion)
        predicted = ops.sum(self.confusion, axis=0)
        support = self._support()
        f1 = 2.0 * tp / ops.maximum(predicted + support, 1.0)
        return self._mean_over(f1, (predicted + support) > 0)


@_register
class MinorityRecall(ConfusionMatrixMetric):
    """Mean recall of the given classes (``recall_score(labels=classes, average="macro")``)."""

    def __init__(
        self,
        num_classes: int,
        classes,
        threshold: float = 0.5,
        name="minority_recall",
        dtype=None,
        from_logits=False,
    ):
        super().__init__(num_classes, threshold, name=name, dtype=dtype, from_logits=from_logits)
        classes = [int(c) for c in classes]
        if not classes or any(not 0 <= c < num_classes for c in classes):
            raise ValueError(
                f"classes: expected class indices in [0, {num_classes}), got {classes}."
            )
        self.classes = classes

    @classmethod
    def for_classes(cls, num_classes: int, minority_classes, from_logits: bool = False):
        return cls(num_classes, minority_classes, from_logits=from_logits)

    def result(self):
        mask = ops.sum(ops.one_hot(ops.convert_to_tensor(self.classes), self.num_classes), axis=0)
        return self._mean_over(self._recalls(), mask > 0)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


@_register
class WorstClassRecall(ConfusionMatrixMetric):
    """The lowest recall among the classes present so far."""

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.5,
        name="worst_class_recall",
        dtype=None,
        from_logits=False,
    ):
        super().__init__(num_classes, threshold, name=name, dtype=dtype, from_logits=from_logits)

    def result(self):
        present = self._support() > 0
        worst = ops.min(ops.where(present, self._recalls(), 2.0))
        return ops.where(worst > 1.0, 0.0, worst)  # nothing seen yet


@_register
class GMean(ConfusionMatrixMetric):
    """Geometric mean of the recalls of the classes present so far (0 if one is 0)."""

    def __init__(
        self, num_classes: int, threshold: float = 0.5, name="g_mean", dtype=None, from_logits=False
    ):
        super().__init__(num_classes, threshold, name=name, dtype=dtype, from_logits=from_logits)

    def result(self):
        present = ops.cast(self._support() > 0, "float32")
        recalls = self._recalls()
        any_zero = ops.sum(present * ops.cast(recalls <= 0.0, "float32")) > 0
        logs = ops.log(ops.where(present > 0, ops.maximum(recalls, 1e-30), 1.0))
        gmean = ops.exp(ops.sum(logs) / ops.maximum(ops.sum(present), 1.0))
        return ops.where(any_zero, 0.0, gmean)
