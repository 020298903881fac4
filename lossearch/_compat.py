"""The private APIs of our dependencies that lossearch still uses, in one place.

Each use says which public API is missing. ``tests/test_compat.py`` exercises every
one against the installed versions, and ``pyproject.toml`` bounds those versions to
the ranges the tests ran on, so an upgrade that moves one fails a test, not a search.
"""

from __future__ import annotations

from typing import Any


def compile_arguments(model) -> dict | None:
    """The live arguments ``model`` was compiled with, or None when it is not compiled.

    Keras's public ``get_compile_config()`` returns them *serialized*: rebuilding from it
    would replace the user's metric objects and optimizer with fresh copies (and fail for
    unregistered custom ones); a trial must keep the user's own.
    """
    config = getattr(model, "_compile_config", None)
    if not getattr(model, "compiled", False) or config is None:
        return None
    return dict(config.config)


def keras_logits(y_pred) -> Any:
    """The logits Keras attached to a softmax or sigmoid output, or ``None``.

    On the TensorFlow backend, Keras's ``softmax`` / ``sigmoid`` keep their input on the
    output tensor as ``_keras_logits`` and Keras's own cross-entropies read it, so that
    ``log p`` is exact rather than ``log`` of a clipped ``p``. There is no public accessor.
    """
    return getattr(y_pred, "_keras_logits", None)


def dataset_input(dataset, context: str):
    """An MLflow ``DatasetInput`` for ``MlflowClient.log_inputs``.

    The client API takes entities and ``Dataset`` has no public conversion; the public
    ``mlflow.log_input`` logs to the *active fluent run*, and ending that run would mark
    the search's parent run FINISHED while trials still run.
    """
    from mlflow.entities import DatasetInput, InputTag

    return DatasetInput(
        dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)]
    )


class RecipesFirst:
    """Mixin for a Keras Tuner oracle: hand out ``pending_recipes`` before its own draws.

    Keras Tuner has no public way to queue given values (Optuna's ``enqueue_trial``);
    every built-in oracle draws through the private ``_random_values`` and checks
    ``_duplicate``, so overriding the first (and asking the second) is the one hook.
    """

    pending_recipes: list[dict[str, Any]]

    def _random_values(self):
        while getattr(self, "pending_recipes", None):
            values = dict(self.pending_recipes.pop(0))
            if not self._duplicate(values):
                return values
        return super()._random_values()


def log_keras_model(**log_model_args):
    """``mlflow.keras.log_model(**log_model_args)``, input example included.

    MLflow 3's Keras flavor writes the input example before it creates the model's folder
    (mlflow/mlflow#16183, open), so ``input_example=`` fails with ``FileNotFoundError``.
    ``mlflow.keras.log_model`` is ``Model.log(flavor=mlflow.keras, ...)``; this passes a
    flavor whose ``save_model`` creates the folder first and is otherwise MLflow's own.
    """
    import os
    from types import SimpleNamespace

    import mlflow.keras
    from mlflow.models import Model

    def save_model(path, **kwargs):
        os.makedirs(path, exist_ok=True)
        return mlflow.keras.save_model(path=path, **kwargs)

    flavor = SimpleNamespace(__name__=mlflow.keras.__name__, save_model=save_model)
    return Model.log(artifact_path=None, flavor=flavor, **log_model_args)


def fail_running_trial(study, trial) -> bool:
    """Set a RUNNING trial of ``study`` to FAIL, as ``optuna.storages.fail_stale_trials``
    does for a trial whose heartbeat stopped; False when it had finished meanwhile.

    Optuna fails a trial of another process only through heartbeats, after their grace
    period; ``set_trial_state_values`` (public on the storage) wants the trial's storage
    id, which ``FrozenTrial`` keeps private, and ``Study`` keeps its storage private.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        return study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
