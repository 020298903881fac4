"""Minority-class metrics.

* :mod:`lossearch.metrics.evaluation`: scikit-learn metrics of a finished trial and
  the search objectives.
* :mod:`lossearch.metrics.streaming`: the same objectives as streaming
  ``keras.metrics.Metric`` classes, read from the epoch logs without a predict pass.
"""

from lossearch.metrics.evaluation import (
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    Metrics,
    Objective,
    default_minority_classes,
    evaluate,
    expected_calibration_error,
    resolve_minority_classes,
    resolve_objective,
    scalar_metric,
)
from lossearch.metrics.streaming import (
    BalancedAccuracy,
    GMean,
    MacroF1,
    MinorityRecall,
    WorstClassRecall,
)

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
]
