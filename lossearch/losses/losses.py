"""``keras.losses.Loss`` classes, one per family, each a thin wrapper of a pure
function in :mod:`lossearch.losses.functional` that carries its config.

``get_config()`` returns exactly the constructor's arguments and every class is
registered for serialization, so a model compiled with one saves to ``.keras``
and reloads with only ``import lossearch``.

Arguments shared by every family:

* ``task``: ``"multiclass"``, ``"binary"`` or ``"multilabel"`` (see ``tasks``
  on each class for the ones it supports).
* ``from_logits``: ``y_pred`` holds logits (default) or probabilities.
* ``label_smoothing``: in ``[0, 1)``.
* ``class_weights``: one weight per class (from :mod:`lossearch.weights`).
* ``batch_weighting``: ``{"smoothing": s, "normalize": n}`` to weight by the
  inverse class frequency of each batch instead.
* ``deferred_weights``: start with all weights 1; the callback from
  :func:`lossearch.callbacks_for` switches them on (deferred re-weighting).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
from keras import ops

from lossearch import weights as weight_schemes
from lossearch._params import Param, number, resolve
from lossearch._validation import shown
from lossearch.losses import functional
from lossearch.losses.families import SPECS, TASKS


class LossearchLoss(keras.losses.Loss):
    """Base class: the shared arguments, class weights and the DRW switch.

    Subclasses set ``family`` and ``fn``; their ``tasks``, ``params`` (their own arguments,
    as :class:`lossearch._params.Param`) and ``needs_counts`` come from the family's entry
    in :data:`lossearch.losses.families.SPECS`.
    """

    family: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = TASKS
    params: ClassVar[dict[str, Param]] = {}
    needs_counts: ClassVar[bool] = False
    fn: ClassVar[Any]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = SPECS.get(cls.__dict__.get("family"))
        if spec is not None:  # one of lossearch's families: the Keras-free facts say it
            cls.tasks, cls.params, cls.needs_counts = (
                spec.tasks,
                dict(spec.params),
                spec.needs_counts,
            )

    def __init__(
        self,
        *,
        task: str = "multiclass",
        from_logits: bool = True,
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        batch_weighting: dict | None = None,
        deferred_weights: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
        **family_params,
    ):
        super().__init__(name=name or self.family, reduction=reduction, dtype=dtype)
        if task not in self.tasks:
            raise ValueError(
                f"task: the {shown(self.family)} loss supports {list(self.tasks)}, got "
                f"{shown(task)}."
            )
        problem = number(0.0, 1.0, high_open=True)(label_smoothing)
        if problem:
            raise ValueError(f"label_smoothing: {problem}.")
        if class_weights is not None and batch_weighting is not None:
            raise ValueError("class_weights and batch_weighting are exclusive; pass one.")
        self.family_params = resolve(self.family, self.params, family_params)
        self.task = task
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.batch_weighting = (
            None
            if batch_weighting is None
            else resolve("batch_weighting", weight_schemes.SCHEMES["batch"].params, batch_weighting)
        )
        self.deferred_weights = bool(deferred_weights)
        self._dtype_arg = dtype
        # DRW: 0.0 keeps every weight at 1, 1.0 applies the class weights. A
        # non-trainable variable so the compiled train step reads its live value.
        self.reweighting = keras.Variable(
            0.0 if self.deferred_weights else 1.0,
            trainable=False,
            dtype="float32",
            name=f"{self.name}_reweighting",
        )

    @property
    def is_weighted(self) -> bool:
        return self.class_weights is not None or self.batch_weighting is not None

    def _weights_for(self, labels):
        if self.batch_weighting is not None:
            w = weight_schemes.batch_class_weights(labels, task=self.task, **self.batch_weighting)
        else:
            w = ops.convert_to_tensor(self.class_weights, dtype=labels.dtype)
        if not self.deferred_weights:
            return w
        switch = ops.cast(self.reweighting, labels.dtype)
        return 1.0 + switch * (w - 1.0)

    def call(self, y_true, y_pred):
        return type(self).fn(
            y_true,
            y_pred,
            **self.family_params,
            task=self.task,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weights=self._weights_for if self.is_weighted else None,
        )

    def get_config(self) -> dict:
        return {
            **self.family_params,
            "task": self.task,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "class_weights": self.class_weights,
            "batch_weighting": self.batch_weighting,
            "deferred_weights": self.deferred_weights,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self._dtype_arg,
        }


def _register(cls):
    return keras.saving.register_keras_serializable(package="lossearch")(cls)


@_register
class CrossEntropy(LossearchLoss):
    """Softmax cross-entropy (multiclass) or sigmoid binary cross-entropy.

    Example:
        >>> import numpy as np
        >>> loss = CrossEntropy(class_weights=[0.5, 1.5])
        >>> round(float(loss(np.array([1]), np.array([[0.0, 0.0]]))), 4)
        1.0397
    """

    family = "ce"
    fn = staticmethod(functional.cross_entropy)

    def __init__(self, **common):
        super().__init__(**common)


@_register
class FocalLoss(LossearchLoss):
    """Focal loss, softmax or sigmoid: ``-alpha_t (1 - p_t)^gamma log p_t``.

    Args:
        gamma: focusing parameter, ``>= 0`` (0 is cross-entropy).
        alpha: ``None``, a scalar in [0, 1] (sigmoid: weight of positives) or
            one weight per class (softmax).

    Example:
        >>> loss = FocalLoss(gamma=2.0, task="binary")
    """

    family = "focal"
    fn = staticmethod(functional.focal)

    def __init__(self, gamma: float = 2.0, alpha: float | list[float] | None = None, **common):
        super().__init__(gamma=gamma, alpha=alpha, **common)


@_register
class Poly1Loss(LossearchLoss):
    """Poly-1 loss: ``CE + epsilon * (1 - p_t)`` (``epsilon >= -1``)."""

    family = "poly1"
    fn = staticmethod(functional.poly1)

    def __init__(self, epsilon: float = 1.0, **common):
        super().__init__(epsilon=epsilon, **common)


@_register
class LogitAdjustedLoss(LossearchLoss):
    """Logit-adjusted cross-entropy ``CE(z + tau * log(prior))``; tau=1 is Balanced Softmax."""

    family = "logit_adjusted"
    fn = staticmethod(functional.logit_adjusted)

    def __init__(self, class_counts: list[int] | None = None, tau: float = 1.0, **common):
        super().__init__(class_counts=class_counts, tau=tau, **common)


@_register
class LDAMLoss(LossearchLoss):
    """Label-distribution-aware margin loss ``CE(s * (z - Delta_y e_y))``.

    The paper's ``scale=30`` assumes a cosine-normalised classifier: use
    :class:`lossearch.layers.CosineDense` as the last layer in that setup.
    """

    family = "ldam"
    fn = staticmethod(functional.ldam)

    def __init__(
        self,
        class_counts: list[int] | None = None,
        max_margin: float = 0.5,
        scale: float = 1.0,
        **common,
    ):
        super().__init__(class_counts=class_counts, max_margin=max_margin, scale=scale, **common)


@_register
class VSLoss(LossearchLoss):
    """Vector-scaling loss ``CE(Delta * z + tau * log(prior))``, ``Delta_j = (n_j/n_max)^gamma``."""

    family = "vs"
    fn = staticmethod(functional.vs)

    def __init__(
        self, class_counts: list[int] | None = None, gamma: float = 0.3, tau: float = 1.0, **common
    ):
        super().__init__(class_counts=class_counts, gamma=gamma, tau=tau, **common)


@_register
class PosWeightedBCE(LossearchLoss):
    """Binary cross-entropy with the positive term scaled by ``pos_weight``.

    Equal to ``tf.nn.weighted_cross_entropy_with_logits``. A sigmoid loss: for
    binary and multi-label outputs only (not for softmax one-hot targets).
    """

    family = "pos_weighted_bce"
    fn = staticmethod(functional.pos_weighted_bce)

    def __init__(self, pos_weight: float | list[float] = 1.0, **common):
        common.setdefault("task", "binary")
        super().__init__(pos_weight=pos_weight, **common)


@_register
class AsymmetricLoss(LossearchLoss):
    """Asymmetric loss (ASL) for multi-label (and binary) outputs."""

    family = "asymmetric"
    fn = staticmethod(functional.asymmetric)

    def __init__(
        self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, **common
    ):
        common.setdefault("task", "multilabel")
        super().__init__(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, **common)


@_register
class NCERCELoss(LossearchLoss):
    """Active-passive loss ``alpha * NCE + beta * RCE``, robust to label noise."""

    family = "nce"
    fn = staticmethod(functional.nce_rce)

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, **common):
        super().__init__(alpha=alpha, beta=beta, **common)


FAMILIES: dict[str, type[LossearchLoss]] = {
    cls.family: cls
    for cls in (
        CrossEntropy,
        FocalLoss,
        Poly1Loss,
        LogitAdjustedLoss,
        LDAMLoss,
        VSLoss,
        PosWeightedBCE,
        AsymmetricLoss,
        NCERCELoss,
    )
}

__all__ = ["FAMILIES", "TASKS", "LossearchLoss", *(cls.__name__ for cls in FAMILIES.values())]
