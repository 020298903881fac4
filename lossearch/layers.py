"""Layers that some loss families assume."""

from __future__ import annotations

import keras
from keras import ops


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
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"units: expected a positive integer, got {units!r}.")
        self.units = units
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
