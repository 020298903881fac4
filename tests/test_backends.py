"""A small search completes on whichever Keras backend the run was started with.

``make test`` runs the ``all_backends`` tests again under ``KERAS_BACKEND=jax`` and
``KERAS_BACKEND=torch`` (CPU builds).
"""

import os
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest

import lossearch
from tests.search_helpers import dense_model, digits, tiny_search

pytestmark = pytest.mark.all_backends


def test_keras_runs_on_the_backend_the_environment_asks_for():
    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]


def test_a_small_optimize_completes_and_reports(tmp_path, mlflow_uri, experiment):
    x, y = digits()
    result = tiny_search(
        mlflow_uri,
        experiment,
        data=(x, y),
        n_trials=3,
        confirm_seeds=1,
        storage=f"sqlite:///{tmp_path}/study.db",
    )
    states = [state for _, state, _ in result.search.trial_states()]
    assert states.count("COMPLETE") == 3
    assert 0.0 <= result.best_value <= 1.0
    parent = mlflow.MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert parent.data.tags["lossearch.keras_backend"] == keras.backend.backend()

    # The exported config rebuilds a loss that trains on this backend.
    loss = lossearch.load_loss(result.export(tmp_path / "best.json"))
    model = dense_model(64, 10)()
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    page = Path(result.report(tmp_path / "report.html")).read_text(encoding="utf-8")
    assert page.count("data:image/svg+xml;base64,") >= 3  # the charts, embedded
