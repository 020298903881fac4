"""lossearch inside a search of your own: :mod:`~lossearch.integrations.optuna`
(``suggest_loss`` in your Optuna objective, the recipes, pruning and MLflow callbacks) and
:mod:`~lossearch.integrations.keras_tuner` (``LossHyperModel`` for your own tuner). Both are
also ``lossearch.optuna`` and ``lossearch.keras_tuner``, their names before this package.
"""
