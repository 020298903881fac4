"""Backends: who decides which loss configs to try. Each driver subclasses
:class:`~lossearch.backends.base.BaseDriver` and runs trials through its shared routine."""

from __future__ import annotations

from lossearch.arguments import BACKENDS, TUNERS
from lossearch.backends.base import BaseDriver

__all__ = ["BACKENDS", "TUNERS", "BaseDriver", "create_driver"]


def create_driver(runner, space, tracker, settings, storage=None) -> BaseDriver:
    """The driver of ``settings.backend`` (Keras Tuner is imported only when asked for);
    ``storage``: the Optuna storage the session opened (None: in memory)."""
    if settings.backend == "optuna":
        from lossearch.backends.optuna import OptunaDriver

        return OptunaDriver.create(runner, space, tracker, settings, storage)
    from lossearch.backends.keras_tuner import KerasTunerDriver

    return KerasTunerDriver.create(runner, space, tracker, settings)
