"""MLflow: the one place lossearch talks to it.

* :mod:`lossearch.tracking.runs`: :class:`Tracker` (the parent run of a search, one child
  run per trial, the search's artifacts) and :class:`TrialRun`;
* :mod:`lossearch.tracking.sync`: ``lossearch sync-mlflow``, MLflow brought up to date with a
  stored search;
* :mod:`lossearch.tracking.model`: the refit model logged as an MLflow model.
"""

from lossearch.tracking.runs import Tracker, TrialRun

__all__ = ["Tracker", "TrialRun"]
