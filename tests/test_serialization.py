""".keras round trips and JSON round trips for every family."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lossearch
from lossearch import FAMILIES, LossConfig
from tests.helpers import mlp, task_of

pytestmark = pytest.mark.all_backends  # also run on JAX and PyTorch (make test)

COUNTS = {"multiclass": [300, 60, 12, 3], "multilabel": [120, 40, 8]}
TUNED = {
    "focal": {"gamma": 0.7, "alpha": 0.4},
    "poly1": {"epsilon": -0.5},
    "logit_adjusted": {"tau": 1.3},
    "ldam": {"max_margin": 0.3, "scale": 2.0},
    "vs": {"gamma": 0.1, "tau": 0.4},
    "pos_weighted_bce": {"pos_weight": "balanced"},
    "asymmetric": {"gamma_pos": 1.0, "gamma_neg": 3.0, "clip": 0.02},
    "nce": {"alpha": 2.0, "beta": 0.5},
}


def _config(family):
    task = task_of(family)
    return LossConfig(
        family,
        TUNED.get(family, {}),
        weights="effective_number",
        weight_params={"beta": 0.99},
        label_smoothing=0.05,
        class_counts=COUNTS[task],
        class_names=[f"c{i}" for i in range(len(COUNTS[task]))],
        task=task,
        n_samples=200 if task == "multilabel" else None,
    )


def _data(task, n=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    width = len(COUNTS[task])
    y = rng.integers(0, width, n) if task == "multiclass" else rng.integers(0, 2, (n, width))
    return x, y.astype("float32") if task == "multilabel" else y


@pytest.mark.parametrize("family", list(FAMILIES))
def test_json_round_trip_is_identity(family, tmp_path):
    config = _config(family)
    again = LossConfig.from_json(config.to_json())
    assert again == config
    path = tmp_path / "loss.json"
    config.to_json(path)
    assert LossConfig.from_json(path) == config
    assert json.loads(path.read_text())["format"] == "lossearch.loss/1"
    x, y = _data(config.task)
    logits = np.random.default_rng(1).normal(size=(16, len(config.class_counts))).astype("float32")
    assert float(config.build()(y, logits)) == float(lossearch.load_loss(path)(y, logits))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_loss_get_config_is_exactly_the_constructor_arguments(family):
    import inspect

    loss = _config(family).build()
    config = loss.get_config()
    rebuilt = type(loss).from_config(config)
    assert rebuilt.get_config() == config
    signature = inspect.signature(type(loss).__init__)
    own = {n for n, p in signature.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD} - {
        "self"
    }
    shared = set(inspect.signature(lossearch.losses.LossearchLoss.__init__).parameters) - {
        "self",
        "family_params",
    }
    assert set(config) == own | shared


def test_keras_files_reload_in_a_fresh_process_after_import_lossearch_or_with_load_model(
    tmp_path,
):
    expected = {}
    for family in FAMILIES:
        config = _config(family)
        x, y = _data(config.task)
        model = mlp(6, len(config.class_counts))
        model.compile(optimizer="adam", loss=config.build())
        model.save(tmp_path / f"{family}.keras")
        np.save(tmp_path / f"{family}_x.npy", x)
        np.save(tmp_path / f"{family}_y.npy", y)
        expected[family] = float(model.loss(y, model(x)))
    script = textwrap.dedent(
        f"""
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, keras
        import lossearch  # the only preparation: no custom_objects
        out = {{}}
        for family in {list(FAMILIES)!r}:
            d = {str(tmp_path)!r}
            path = os.path.join(d, family + ".keras")
            model = keras.models.load_model(path)
            again = lossearch.load_model(path)
            x = np.load(os.path.join(d, family + "_x.npy"))
            y = np.load(os.path.join(d, family + "_y.npy"))
            assert type(again.loss) is type(model.loss)
            out[family] = [type(model.loss).__name__, float(model.loss(y, model(x)))]
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    for family, (class_name, value) in reloaded.items():
        assert class_name == type(_config(family).build()).__name__
        assert value == pytest.approx(expected[family], rel=1e-6), family


def test_saved_loss_rebuilds_without_optuna_or_mlflow(tmp_path):
    """A serving image may hold Keras alone: loading a best_loss.json must not need the
    search stack, which ``import lossearch`` loads only when the search is asked for."""
    path = tmp_path / "best_loss.json"
    _config("focal").to_json(path)
    y, logits = [0, 3, 1], [[2.0, 0.1, -1.0, 0.3], [0.2, 0.1, 0.0, 1.5], [0.0, 1.0, 0.5, -2.0]]
    expected = float(lossearch.load_loss(path)(np.array(y), np.array(logits)))
    script = textwrap.dedent(
        f"""
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        for blocked in ("optuna", "mlflow", "sqlalchemy", "keras_tuner"):
            sys.modules[blocked] = None  # any import of them now raises ImportError
        import numpy as np
        import lossearch
        loss = lossearch.load_loss({str(path)!r})
        value = float(loss(np.array({y!r}), np.array({logits!r})))
        try:
            lossearch.optimize
        except ImportError as error:
            search = str(error)
        print(json.dumps([type(loss).__name__, value, search]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    name, value, search = json.loads(done.stdout.strip().splitlines()[-1])
    assert name == type(_config("focal").build()).__name__
    assert value == pytest.approx(expected, rel=1e-6)
    assert "import" in search  # the search side really was not loaded before
    assert callable(lossearch.optimize) and "optimize" in dir(lossearch)
