"""Turning ``(y_true, y_pred)`` into what every loss family works on.

All families share these steps, so they live here once:

* recover logits from probabilities when ``from_logits=False`` (in log space,
  so the loss itself never takes ``log`` of a clipped probability of a logit);
* make labels dense (sparse integers become one-hot; a binary ``(B,)`` label
  becomes ``(B, 1)``) for any number of leading dimensions;
* smooth labels the Keras way;
* apply class weights: per sample by its true class (softmax families) or per
  positive / negative term (sigmoid families).

Everything here is written with ``keras.ops`` so it runs on every Keras backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from keras import backend, ops
from keras import config as keras_config

from lossearch import _compat

SOFTMAX_TASKS = ("multiclass",)
SIGMOID_TASKS = ("binary", "multilabel")

# ``class_weights`` as the pure loss functions take it: nothing, a vector of one
# weight per class, or a function of the dense labels (batch and deferred
# schemes, which depend on the batch or on the training phase).
ClassWeights = Any | Callable[[Any], Any] | None


def softmax_logits(y_pred, from_logits: bool):
    """Logits whose softmax is ``y_pred``'s distribution.

    From probabilities the logits are ``log p`` (only defined up to a shift, and
    families that scale logits, like VS, need one fixed choice on every backend).
    When Keras attached the pre-softmax logits to the output (TensorFlow backend),
    ``log p`` is computed exactly from them; otherwise from ``p`` clipped at
    ``keras.config.epsilon()``, as Keras's own cross-entropy does.
    """
    if from_logits:
        return y_pred
    attached = _compat.keras_logits(y_pred)
    if attached is not None:
        return ops.log_softmax(ops.cast(attached, y_pred.dtype), axis=-1)
    eps = keras_config.epsilon()
    return ops.log(ops.clip(y_pred, eps, 1.0))


def sigmoid_logits(y_pred, from_logits: bool):
    """Logits whose sigmoid is ``y_pred`` (see :func:`softmax_logits`)."""
    if from_logits:
        return y_pred
    attached = _compat.keras_logits(y_pred)
    if attached is not None:
        return ops.cast(attached, y_pred.dtype)
    eps = keras_config.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return ops.log(p) - ops.log1p(-p)


def dense_softmax_labels(y_true, y_pred):
    """One-hot labels shaped like ``y_pred`` from sparse or one-hot ``y_true``."""
    num_classes = y_pred.shape[-1]
    rank_true, rank_pred = len(y_true.shape), len(y_pred.shape)
    if rank_true == rank_pred and y_true.shape[-1] == num_classes:
        return ops.cast(y_true, y_pred.dtype)
    if rank_true == rank_pred and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    return ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)


def align_sigmoid(y_true, y_pred):
    """Give binary ``(B,)`` inputs a class axis so both are ``(..., C)``."""
    if len(y_pred.shape) == 0 or len(y_pred.shape) == 1:
        y_pred = ops.expand_dims(y_pred, -1)
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    return ops.reshape(y_true, ops.shape(y_pred)), y_pred


def smooth_softmax(labels, label_smoothing: float):
    if not label_smoothing:
        return labels
    num_classes = ops.cast(ops.shape(labels)[-1], labels.dtype)
    return labels * (1.0 - label_smoothing) + label_smoothing / num_classes


def smooth_sigmoid(labels, label_smoothing: float):
    if not label_smoothing:
        return labels
    return labels * (1.0 - label_smoothing) + 0.5 * label_smoothing


def log_softmax_and_log1m(logits):
    """``(log softmax(logits), log(1 - softmax(logits)))``, both without cancellation.

    A class with ``p > 1/2`` (at most one, the arg-max) gets ``log(1 - p)`` as the
    log of the other classes' mass, summed from the same ``exp(z - max)`` as the
    softmax itself; every other class has ``p <= 1/2``, where ``log1p(-p)`` is
    exact. Both branches get safe inputs, so the unused one cannot inject NaN into
    the gradient. Exact while the others' mass is a normal float (logit gaps up to
    ~87 in float32); past that it is floored, giving a finite log and a zero
    gradient, where the exact values underflow anyway.
    Written for few reductions: on a GPU each one is a kernel launch per step.
    """
    top_logit = ops.stop_gradient(ops.max(logits, axis=-1, keepdims=True))
    shifted = ops.exp(logits - top_logit)
    total = ops.sum(shifted, axis=-1, keepdims=True)
    log_p = logits - (top_logit + ops.log(total))
    is_top = log_p > math.log(0.5)
    others = ops.sum(ops.where(is_top, 0.0, shifted), axis=-1, keepdims=True)
    # The smallest normal numbers: float16's, else float32's (bfloat16 and float64 reach it too).
    floor = 6.2e-5 if backend.standardize_dtype(logits.dtype) == "float16" else 1.2e-38
    top_branch = ops.log(ops.maximum(others, floor)) - ops.log(total)
    p_safe = ops.where(is_top, 0.0, ops.exp(log_p))
    return log_p, ops.where(is_top, top_branch, ops.log1p(-p_safe))


def resolve_weights(class_weights: ClassWeights, labels):
    if class_weights is None:
        return None
    if callable(class_weights):
        return class_weights(labels)
    return ops.cast(class_weights, labels.dtype)


def weight_softmax(per_sample, labels, class_weights: ClassWeights):
    """Scale each sample's loss by the weight of its true class."""
    weights = resolve_weights(class_weights, labels)
    if weights is None:
        return per_sample
    return per_sample * ops.sum(labels * weights, axis=-1)


def combine_sigmoid(pos_term, neg_term, targets, labels, task: str, class_weights: ClassWeights):
    """Mean over labels of ``w+ * t * pos_term + w- * (1 - t) * neg_term``.

    ``pos_term`` / ``neg_term`` are the losses for a positive / negative label.
    Binary weights are ``[w_negative_class, w_positive_class]``; multi-label
    weights are one per label and apply to its positive term.
    """
    weights = resolve_weights(class_weights, labels)
    if weights is None:
        w_pos, w_neg = 1.0, 1.0
    elif task == "binary":
        w_neg, w_pos = weights[0], weights[1]
    else:
        w_pos, w_neg = weights, 1.0
    per_label = w_pos * targets * pos_term + w_neg * (1.0 - targets) * neg_term
    return ops.mean(per_label, axis=-1)
