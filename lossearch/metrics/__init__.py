"""Minority-class metrics.

* :mod:`lossearch.metrics.objectives`: the registry of objectives, one entry each, with
  everything the search needs to know about them.
* :mod:`lossearch.metrics.evaluation`: scikit-learn metrics of a finished trial.
* :mod:`lossearch.metrics.streaming`: the same objectives as streaming
  ``keras.metrics.Metric`` classes, read from the epoch logs without a predict pass.
"""

from lossearch.metrics.evaluation import (
    Metrics,
    default_minority_classes,
    evaluate,
    resolve_minority_classes,
)
from lossearch.metrics.objectives import (
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    Objective,
    resolve_objective,
    scalar_metric,
    summary_metrics,
)
from lossearch.metrics.predictions import expected_calibration_error

# The streaming metrics are Keras classes: loaded when first asked for, so that naming an
# objective (the command line checks ``--objective`` before TensorFlow loads) needs no Keras.
_STREAMING = ("BalancedAccuracy", "GMean", "MacroF1", "MinorityRecall", "WorstClassRecall")


def __getattr__(name: str):
    if name in _STREAMING:
        from lossearch.metrics import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'lossearch.metrics' has no attribute {name!r}")


__all__ = [
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "BalancedAccuracy",
    "GMean",
    "MacroF1",
    "Metrics",
    "MinorityRecall",
    "Objective",
    "WorstClassRecall",
    "default_minority_classes",
    "evaluate",
    "expected_calibration_error",
    "resolve_minority_classes",
    "resolve_objective",
    "scalar_metric",
    "summary_metrics",
]
