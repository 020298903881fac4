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


def rdb_storage_for_reading(url: str, engine_kwargs: dict):
    """Optuna's ``RDBStorage`` on a database whose schema is this Optuna's, opened without
    the schema bookkeeping: ``RDBStorage.__init__`` always sets up alembic (a fifth of a
    second to import), which a command that only reads a study (``lossearch export``,
    ``report``) cannot afford in its one second. The storage's attributes are those its
    ``__init__`` sets in Optuna 5 (``tests/test_compat.py`` compares what the two read).

    Falls back to the full ``RDBStorage`` where the database's alembic revision is not this
    Optuna's head (an older schema, or none): Optuna then says what to do.
    """
    import sqlalchemy
    from optuna.storages import RDBStorage
    from sqlalchemy import orm

    engine = sqlalchemy.engine.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as connection:
            revision = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")
            ).scalar()
    except sqlalchemy.exc.SQLAlchemyError:
        revision = None
    if revision is None or revision != _optuna_schema_head():
        engine.dispose()
        return RDBStorage(url, skip_table_creation=True, engine_kwargs=engine_kwargs)
    storage = RDBStorage.__new__(RDBStorage)
    storage.__dict__.update(
        engine_kwargs=engine_kwargs,
        url=url,
        skip_compatibility_check=True,
        heartbeat_interval=None,
        grace_period=None,
        heartbeat_stale_trial_callback=None,
        failed_trial_callback=None,
        engine=engine,
        scoped_session=orm.scoped_session(orm.sessionmaker(bind=engine)),
        _version_manager=None,  # upgrades only: a reader never upgrades
    )
    return storage


def _optuna_schema_head() -> str | None:
    """The newest alembic revision among Optuna's own migration scripts (the one no other
    script names as its ``down_revision``), read as text: importing alembic is what the
    reading storage saves."""
    import re
    from pathlib import Path

    import optuna.storages._rdb as rdb

    revisions, parents = set(), set()
    for script in (Path(rdb.__file__).parent / "alembic" / "versions").glob("*.py"):
        text = script.read_text()
        found = re.search(r'^revision\s*=\s*["\']([^"\']+)', text, re.M)
        parent = re.search(r'^down_revision\s*=\s*["\']([^"\']+)', text, re.M)
        revisions |= {found.group(1)} if found else set()
        parents |= {parent.group(1)} if parent else set()
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
