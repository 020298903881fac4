"""Pure loss functions, one per family, written with ``keras.ops`` only.

Each takes ``(y_true, y_pred)`` plus the family's parameters and returns the
loss per sample (the class axis reduced), exactly like ``keras.losses``
functions; :mod:`lossearch.losses.losses` wraps them in ``Loss`` classes that
carry their config. Every family works from logits through log-softmax or
log-sigmoid, so gradients stay finite at extreme logits.

Common keyword arguments:

* ``task``: ``"multiclass"`` (softmax over the last axis; sparse or one-hot
  labels) or ``"binary"`` / ``"multilabel"`` (sigmoid per output; 0/1 or
  multi-hot labels).
* ``from_logits``: whether ``y_pred`` holds logits (default) or probabilities.
* ``label_smoothing``: towards uniform (softmax) or towards 0.5 (sigmoid).
* ``class_weights``: ``None``, a vector with one weight per class, or a
  callable mapping the dense labels to such a vector.
"""

from __future__ import annotations

import math

from keras import ops

from lossearch.losses._inputs import (
    ClassWeights,
    align_sigmoid,
    combine_sigmoid,
    dense_softmax_labels,
    log_softmax_and_log1m,
    sigmoid_logits,
    smooth_sigmoid,
    smooth_softmax,
    softmax_logits,
    weight_softmax,
)

# Reverse cross-entropy treats log(0) of a one-hot label as log(1e-4), as in the
# reference code of Ma et al. (2020).
RCE_LABEL_FLOOR = 1e-4


def _softmax_inputs(y_true, y_pred, from_logits, label_smoothing):
    y_pred = ops.convert_to_tensor(y_pred)
    logits = softmax_logits(y_pred, from_logits)
    labels = dense_softmax_labels(ops.convert_to_tensor(y_true), logits)
    return logits, labels, smooth_softmax(labels, label_smoothing)


def _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing):
    y_true, y_pred = align_sigmoid(ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred))
    logits = sigmoid_logits(y_pred, from_logits)
    return logits, y_true, smooth_sigmoid(y_true, label_smoothing)


def _log_prior(class_counts, dtype):
    counts = ops.convert_to_tensor(class_counts, dtype=dtype)
    return ops.log(counts / ops.sum(counts))


def _softmax_ce(targets, logits):
    return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)


def _bce_terms(logits):
    """Per-label losses for a positive and for a negative label."""
    return -ops.log_sigmoid(logits), -ops.log_sigmoid(-logits)


def cross_entropy(
    y_true,
    y_pred,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Softmax cross-entropy, or sigmoid binary cross-entropy for sigmoid tasks.

    Example:
        >>> import numpy as np
        >>> loss = cross_entropy(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
        >>> [round(float(v), 4) for v in loss]
        [0.1269, 0.1269]
    """
    if task == "multiclass":
        logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
        return weight_softmax(_softmax_ce(targets, logits), labels, class_weights)
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    pos, neg = _bce_terms(logits)
    return combine_sigmoid(pos, neg, targets, labels, task, class_weights)


def focal(
    y_true,
    y_pred,
    gamma=2.0,
    alpha=None,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Focal loss (Lin et al., 2017): ``-alpha_t (1 - p_t)^gamma log p_t``.

    The modulator is ``exp(gamma * log(1 - p))`` with ``log(1 - p)`` computed
    without cancellation, so ``gamma < 1`` keeps finite gradients as ``p -> 1``.
    ``alpha``: ``None`` (no balancing), a scalar (softmax: every class; sigmoid:
    the positive term, ``1 - alpha`` the negative one) or one value per class
    (softmax).
    """
    if task == "multiclass":
        logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
        log_p, log_1m_p = log_softmax_and_log1m(logits)
        modulator = ops.exp(gamma * log_1m_p) if gamma else 1.0
        per_class = -targets * modulator * log_p
        if alpha is not None:
            per_class = per_class * ops.cast(alpha, per_class.dtype)
        return weight_softmax(ops.sum(per_class, axis=-1), labels, class_weights)
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    pos, neg = _bce_terms(logits)
    if gamma:
        # (1 - p)^gamma = exp(-gamma * -log(1 - p)), p^gamma = exp(-gamma * -log p):
        # no pow of 0, so gamma < 1 keeps finite gradients.
        pos, neg = ops.exp(-gamma * neg) * pos, ops.exp(-gamma * pos) * neg
    if alpha is not None:
        pos, neg = alpha * pos, (1.0 - alpha) * neg
    return combine_sigmoid(pos, neg, targets, labels, task, class_weights)


def poly1(
    y_true,
    y_pred,
    epsilon=1.0,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Poly-1 loss (Leng et al., 2022): ``CE + epsilon * (1 - p_t)``."""
    if task == "multiclass":
        logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
        p_t = ops.sum(targets * ops.softmax(logits, axis=-1), axis=-1)
        loss = _softmax_ce(targets, logits) + epsilon * (1.0 - p_t)
        return weight_softmax(loss, labels, class_weights)
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    pos, neg = _bce_terms(logits)
    p = ops.sigmoid(logits)
    return combine_sigmoid(
        pos + epsilon * (1.0 - p), neg + epsilon * p, targets, labels, task, class_weights
    )


def logit_adjusted(
    y_true,
    y_pred,
    class_counts,
    tau=1.0,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Logit-adjusted loss (Menon et al., 2021): ``CE(z + tau * log(prior), y)``.

    ``tau=1`` is Balanced Softmax (Ren et al., 2020). For ``task="binary"`` the
    single logit is shifted by ``tau * log(n_pos / n_neg)`` (the same loss as a
    two-class softmax). ``class_counts`` are the training counts per class.
    """
    if task == "multiclass":
        logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
        adjusted = logits + tau * _log_prior(class_counts, logits.dtype)
        return weight_softmax(_softmax_ce(targets, adjusted), labels, class_weights)
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    n_neg, n_pos = class_counts
    pos, neg = _bce_terms(logits + tau * math.log(n_pos / n_neg))
    return combine_sigmoid(pos, neg, targets, labels, task, class_weights)


def ldam(
    y_true,
    y_pred,
    class_counts,
    max_margin=0.5,
    scale=1.0,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """LDAM (Cao et al., 2019): ``CE(s * (z - Delta_y e_y), y)``.

    ``Delta_j = max_margin * (n_min / n_j) ** 0.25``: the rarest class gets the
    largest margin. The paper's ``scale=30`` assumes cosine logits in [-1, 1]
    (:class:`lossearch.layers.CosineDense`); with an ordinary ``Dense`` head keep
    ``scale`` near 1.
    """
    logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
    counts = ops.convert_to_tensor(class_counts, dtype=logits.dtype)
    margins = max_margin * ops.power(ops.min(counts) / counts, 0.25)
    shifted = scale * (logits - labels * margins)
    return weight_softmax(_softmax_ce(targets, shifted), labels, class_weights)


def vs(
    y_true,
    y_pred,
    class_counts,
    gamma=0.3,
    tau=1.0,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Vector-scaling loss (Kini et al., 2021): ``CE(Delta * z + tau * log(prior), y)``.

    ``Delta_j = (n_j / n_max) ** gamma`` multiplies the logits (rare classes
    get smaller scales), ``tau`` adds the logit adjustment. Scaling is not
    shift-invariant: from probabilities (``from_logits=False``) the logits are
    ``log p``.
    """
    logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
    counts = ops.convert_to_tensor(class_counts, dtype=logits.dtype)
    scales = ops.power(counts / ops.max(counts), gamma)
    adjusted = scales * logits + tau * _log_prior(class_counts, logits.dtype)
    return weight_softmax(_softmax_ce(targets, adjusted), labels, class_weights)


def pos_weighted_bce(
    y_true,
    y_pred,
    pos_weight=1.0,
    *,
    task="binary",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """``pos_weight * y * -log(sigmoid(z)) + (1 - y) * -log(sigmoid(-z))``.

    The same value as ``tf.nn.weighted_cross_entropy_with_logits``; a sigmoid
    loss, for binary and multi-label outputs only. ``pos_weight`` is a scalar
    or one value per label.
    """
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    pos, neg = _bce_terms(logits)
    pos = ops.cast(pos_weight, pos.dtype) * pos
    return combine_sigmoid(pos, neg, targets, labels, task, class_weights)


def asymmetric(
    y_true,
    y_pred,
    gamma_pos=0.0,
    gamma_neg=4.0,
    clip=0.05,
    *,
    task="multilabel",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Asymmetric loss (Ridnik et al., 2021) for multi-label outputs.

    ``L+ = (1 - p)^gamma_pos * -log p`` and ``L- = p_m^gamma_neg * -log(1 - p_m)``
    with the shifted probability ``p_m = max(p - clip, 0)``, which discards easy
    negatives entirely.
    """
    logits, labels, targets = _sigmoid_inputs(y_true, y_pred, from_logits, label_smoothing)
    nll_pos, nll_neg = _bce_terms(logits)
    # (1 - p)^g = exp(-g * nll_neg) and p^g = exp(-g * nll_pos): no pow of 0.
    pos = ops.exp(-gamma_pos * nll_neg) * nll_pos if gamma_pos else nll_pos
    if clip:
        p_m = ops.maximum(ops.sigmoid(logits) - clip, 0.0)
        # 1 - p_m >= clip, so log1p is exact and finite here.
        neg = -ops.log1p(-p_m)
        if gamma_neg:
            shifted = p_m > 0
            safe = ops.where(shifted, p_m, 1.0)
            neg = ops.where(shifted, ops.power(safe, gamma_neg), 0.0) * neg
    else:
        neg = ops.exp(-gamma_neg * nll_pos) * nll_neg if gamma_neg else nll_neg
    return combine_sigmoid(pos, neg, targets, labels, task, class_weights)


def nce_rce(
    y_true,
    y_pred,
    alpha=1.0,
    beta=1.0,
    *,
    task="multiclass",
    from_logits=True,
    label_smoothing=0.0,
    class_weights: ClassWeights = None,
):
    """Active-passive loss NCE+RCE (Ma et al., 2020): ``alpha * NCE + beta * RCE``.

    ``NCE = -sum_j y_j log p_j / -sum_j log p_j`` (normalized cross-entropy) and
    ``RCE = -sum_j p_j log(max(y_j, 1e-4))`` (reverse cross-entropy).
    """
    logits, labels, targets = _softmax_inputs(y_true, y_pred, from_logits, label_smoothing)
    log_p = ops.log_softmax(logits, axis=-1)
    nce = ops.sum(targets * log_p, axis=-1) / ops.sum(log_p, axis=-1)
    rce = -ops.sum(ops.exp(log_p) * ops.log(ops.maximum(targets, RCE_LABEL_FLOOR)), axis=-1)
    return weight_softmax(alpha * nce + beta * rce, labels, class_weights)
