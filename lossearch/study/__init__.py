"""Where a search lives: :mod:`~lossearch.study.storages` opens Optuna storages by URL (with
heartbeats, retries and the per-study lock), :mod:`~lossearch.study.state` owns what a search
stores (every key, and the :class:`~lossearch.study.state.StudyState` of either backend), and
:mod:`~lossearch.study.stored` reads a finished search back for ``export``, ``report`` and
``sync-mlflow``. Their names before this package (``lossearch.storages``,
``lossearch.records``, ``lossearch.stored``) import the same modules.
"""
