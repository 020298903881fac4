"""Layers that some loss families assume."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from lossearch._validation import Interval, check
from lossearch.decision import Decision


@keras.saving.register_keras_serializable(package="lossearch")
class CosineDense(keras.layers.Layer):
    """Cosine-similarity classifier head: logits in ``[-1, 1]``.

    ``logits_j = <x / |x|, w_j / |w_j|>``. LDAM (Cao et al. 2019) is defined on
    such normalised logits with ``scale=30``; use this as the model's last layer
    with ``LDAMLoss(scale=30)`` to follow the paper.

    Example:
        >>> layer = CosineDense(10)
    """

    def __init__(self, units: int, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        check("units", units, [Interval(int, 1, None)])
        self.units = int(units)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )

    def call(self, inputs):
        x = inputs / ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True) + self.epsilon)
        w = self.kernel / ops.sqrt(
            ops.sum(ops.square(self.kernel), axis=0, keepdims=True) + self.epsilon
        )
        return ops.matmul(x, w)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="lossearch")
class DecisionLayer(keras.layers.Layer):
    """Applies a tuned :class:`lossearch.decision.Decision` to a model's output.

    Outputs adjusted probabilities: multiclass ``softmax(logits - tau * log(prior))``,
    binary / multi-label ``sigmoid(logit - logit(threshold))``, so the usual arg-max or
    ``>= 0.5`` gives the tuned decision. ``from_logits`` says what the layer receives.

    It computes in float64 (the layer's dtype), so that each output stays a strictly
    monotone map of the model's: in float32, ``sigmoid`` reaches 1.0 at a logit of about 17,
    confident outputs would tie and ranking metrics such as PR-AUC would change. (On JAX,
    float64 needs ``jax_enable_x64``; without it the layer computes in float32.)

    Example:
        >>> from lossearch.decision import Decision
        >>> rule = Decision.logit_adjustment(1.0, class_counts=[90, 10])
        >>> layer = DecisionLayer(rule.to_dict(), from_logits=True)
    """

    def __init__(self, decision: dict, from_logits: bool = True, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.rule = Decision.from_dict(decision, source="DecisionLayer decision")
        self.decision = self.rule.to_dict()
        self.from_logits = bool(from_logits)

    def build(self, input_shape):
        """Refuse a rule that does not fit the model's output (an edited ``.keras`` file):
        at load, with a message, not at predict with a backend's."""
        width = input_shape[-1]
        size = len(self.rule.log_prior or self.rule.threshold)
        if width is not None and size != width:
            what = "classes (log_prior)" if self.rule.kind == "logit_adjustment" else "thresholds"
            raise ValueError(
                f"DecisionLayer: the decision rule has {size} {what}, but the model's output has "
                f"{width} unit(s); the rule belongs to another model (or the file was edited)."
            )
        super().build(input_shape)

    def call(self, inputs):
        dtype = self.compute_dtype
        x = ops.cast(inputs, dtype)
        if self.rule.kind == "logit_adjustment":
            tiny = _float_range(dtype)[0]
            scores = x if self.from_logits else ops.log(ops.clip(x, tiny, 1.0))
            shift = self.rule.tau * ops.convert_to_tensor(self.rule.log_prior, dtype)
            return ops.softmax(scores - shift, axis=-1)
        if not self.from_logits:
            tiny, epsneg = _float_range(dtype)
            x = ops.clip(x, tiny, 1.0 - epsneg)
            x = ops.log(x) - ops.log1p(-x)
        t = ops.convert_to_tensor(self.rule.threshold, dtype)
        return ops.sigmoid(x - (ops.log(t) - ops.log1p(-t)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "decision": self.decision, "from_logits": self.from_logits}


def _float_range(dtype: str) -> tuple[float, float]:
    """The smallest normal number and the gap below 1.0 of ``dtype``: clipping to them
    ties no two values the dtype can tell apart."""
    info = np.finfo(np.dtype(dtype))
    return float(info.tiny), float(info.epsneg)


# -- models with a decision rule ---------------------------------------------------------


def with_decision(model, decision: Decision, *, from_logits: bool):
    """``model`` with a :class:`~lossearch.layers.DecisionLayer` on its output.

    The result outputs adjusted probabilities and survives ``.keras`` save/load.

    Example:
        >>> deployed = with_decision(model, config.decision, from_logits=True)  # doctest: +SKIP
    """
    layer = DecisionLayer(decision.to_dict(), from_logits=from_logits, name="lossearch_decision")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, layer(model.outputs[0]), name=f"{model.name}_decision")


def without_decision(model):
    """The model under a :func:`with_decision` layer (raw outputs), else ``model`` itself."""
    last = model.layers[-1]
    if not isinstance(last, DecisionLayer):
        return model
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, last.input)
