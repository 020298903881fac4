"""The refit model in MLflow: logged with the Keras flavor (signature, input example, the
loss config as metadata), registered on request, and loaded back in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from lossearch import _compat
from tests.search_helpers import digits, tiny_search

ROOT = Path(__file__).parent.parent
X, Y = digits()
QUICK = {"n_trials": 2, "confirm_seeds": 0}


def in_fresh_process(script: str, tracking_uri: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One search whose refit model is logged and registered as ``digits-loss``."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    result = tiny_search(
        uri, "logged_model", data=(X, Y), registered_model_name="digits-loss", **QUICK
    )
    return uri, result


def test_the_refit_model_is_logged_with_signature_example_and_loss_config(logged):
    uri, result = logged
    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info(result.model_uri)
    assert result.model_uri.startswith("models:/")
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 64)
    assert info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 10)
    assert info.saved_input_example_info["type"] == "ndarray"
    assert info.metadata["lossearch.loss"] == json.loads(json.dumps(result.best_config.to_dict()))
    assert {r.split("==")[0] for r in _requirements(info)} >= {"lossearch", "keras", "tensorflow"}
    parent = MlflowClient(uri).get_run(result.mlflow_run_id)
    assert parent.data.tags["model_uri"] == result.model_uri
    assert info.run_id == result.mlflow_run_id


def _requirements(info) -> list[str]:
    return Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()


def test_the_registered_version_points_at_the_logged_model(logged):
    uri, result = logged
    versions = MlflowClient(uri).search_model_versions("name = 'digits-loss'")
    assert [int(v.version) for v in versions] == [1]
    assert versions[0].run_id == result.mlflow_run_id


def test_a_fresh_process_loads_it_from_mlflow_once_lossearch_is_imported(logged, tmp_path):
    """Before ``import lossearch`` Keras refuses, naming the module to import; after it,
    the Keras and pyfunc flavours predict what the in-memory model does."""
    uri, result = logged
    np.save(tmp_path / "x.npy", X[:20])
    result.model.save(tmp_path / "model.keras")
    script = (
        "import json, numpy as np, keras, mlflow, mlflow.keras\n"
        "refusals = []\n"
        f"for load in (lambda: keras.saving.load_model({str(tmp_path / 'model.keras')!r}),\n"
        "             lambda: mlflow.keras.load_model('models:/digits-loss/1')):\n"
        "    try:\n        load()\n"
        "    except TypeError as exc:\n        refusals.append(str(exc))\n"
        "import lossearch\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "model = mlflow.keras.load_model('models:/digits-loss/1')\n"
        "served = mlflow.pyfunc.load_model('models:/digits-loss/1')\n"
        "info = mlflow.models.get_model_info('models:/digits-loss/1')\n"
        "loss = lossearch.LossConfig.from_dict(info.metadata['lossearch.loss']).build()\n"
        "print(json.dumps({'keras': model.predict(x, verbose=0).tolist(),\n"
        "                  'pyfunc': np.asarray(served.predict(x)).tolist(),\n"
        "                  'loss': loss.get_config(), 'refusals': refusals}))\n"
    )
    done = in_fresh_process(script, uri)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["refusals"]) == 2
    for text in out["refusals"]:
        assert "'module': 'lossearch." in text and "make sure they are all imported" in text
    expected = result.model.predict(X[:20], verbose=0)
    np.testing.assert_allclose(out["keras"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["pyfunc"], expected, rtol=1e-5, atol=1e-6)
    assert out["loss"] == json.loads(json.dumps(result.best_config.build().get_config()))


def test_keras_flavor_still_needs_the_input_example_workaround(tmp_path):
    """When MLflow fixes mlflow/mlflow#16183 this fails: drop _compat.log_keras_model."""
    import keras

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    example = np.zeros((2, 4), "float32")
    with mlflow.start_run():
        with pytest.raises(FileNotFoundError, match="input_example"):
            mlflow.keras.log_model(model, name="m", input_example=example, pip_requirements=[])
        info = _compat.log_keras_model(
            model=model, name="m", input_example=example, pip_requirements=[]
        )
    assert info.saved_input_example_info is not None
