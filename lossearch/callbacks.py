"""Keras callbacks a loss config needs during ``fit``."""

from __future__ import annotations

import keras

from lossearch.config import LossConfig
from lossearch.losses import LossearchLoss


class DeferredReweighting(keras.callbacks.Callback):
    """Deferred re-weighting (DRW, Cao et al. 2019): class weights switch on at ``start``.

    Before epoch ``start`` every class weight is 1; from it on, the loss applies
    its scheme's weights. ``start`` is an epoch index (int) or a fraction of the
    ``epochs`` passed to ``fit`` (float in (0, 1)). Acts on every lossearch loss
    compiled into the model that was built with ``deferred_weights=True``.

    Example:
        >>> config = LossConfig("ldam", weights="inverse", drw_start=0.8,
        ...                     class_counts=[500, 50, 5])
        >>> callbacks = callbacks_for(config)  # [DeferredReweighting(0.8)]
    """

    def __init__(self, start: int | float):
        super().__init__()
        self.start = start
        self.start_epoch = start if isinstance(start, int) else None

    def on_train_begin(self, logs=None):
        if isinstance(self.start, float):
            self.start_epoch = reweighting_epoch(self.start, self.params.get("epochs") or 1)
        self._losses = [
            loss for loss in _flatten(self.model.loss) if isinstance(loss, LossearchLoss)
        ]
        self._losses = [loss for loss in self._losses if loss.deferred_weights]
        if not self._losses:
            raise ValueError(
                "DeferredReweighting: the model's loss has no deferred weights; compile it "
                "with the loss built from the same LossConfig (drw_start set)."
            )

    def on_epoch_begin(self, epoch, logs=None):
        value = 1.0 if epoch >= self.start_epoch else 0.0
        changed = False
        for loss in self._losses:
            if float(keras.ops.convert_to_numpy(loss.reweighting)) != value:
                loss.reweighting.assign(value)
                changed = True
        # JAX compiles variables outside the model's state in as constants:
        # retrace once so the step sees the switch.
        if changed and keras.backend.backend() == "jax":
            self.model.make_train_function(force=True)


def reweighting_epoch(start: int | float, epochs: int) -> int:
    """The first epoch (0-based) that deferred re-weighting from ``start`` trains with the
    weights: ``start`` itself, or that fraction of ``epochs``, rounded down."""
    return start if isinstance(start, int) else int(start * epochs)


def first_final_epoch(config: LossConfig, epochs: int) -> int:
    """The first epoch (0-based, of a training of ``epochs``) that trains ``config``'s final
    loss: its deferred re-weighting's first, else 0. A score before it is that of another
    loss (every class weight 1), so a pruner should not judge the config by it.

    Example:
        >>> config = LossConfig("ce", weights="inverse", drw_start=0.75, class_counts=[90, 10])
        >>> first_final_epoch(config, 20)
        15
    """
    if config.drw_start is None:
        return 0
    first = reweighting_epoch(config.drw_start, epochs)
    return first if first < epochs else 0  # never re-weighted: the loss it trains is final


def _flatten(loss):
    if isinstance(loss, dict):
        return [item for value in loss.values() for item in _flatten(value)]
    if isinstance(loss, list | tuple):
        return [item for value in loss for item in _flatten(value)]
    return [loss]


def callbacks_for(config: LossConfig) -> list[keras.callbacks.Callback]:
    """The callbacks ``model.fit`` needs for ``config``'s loss (empty when none).

    Example:
        >>> callbacks_for(LossConfig("ce"))
        []
    """
    if config.drw_start is None:
        return []
    return [DeferredReweighting(config.drw_start)]
