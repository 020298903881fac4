"""Files a user hands back (a .keras model, a loss JSON, a space YAML) are checked on load
like every other input: edited, cut short or absurdly nested, each is one clear ValueError."""

import json
import zipfile

import keras
import numpy as np
import pytest

import lossearch
from lossearch import LossConfig
from lossearch.decision import Decision
from lossearch.layers import with_decision
from lossearch.search_space import SearchSpace


def _saved_model(tmp_path, decision: Decision, width: int):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width)])
    path = tmp_path / "model.keras"
    with_decision(model, decision, from_logits=True).save(path)
    return path


def _edit_decision(path, edit):
    """Rewrite the DecisionLayer's decision block inside the .keras zip."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "DecisionLayer":
            edit(layer["config"]["decision"])
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_an_edited_decision_layer_is_refused_at_load(tmp_path):
    """On main: tau=1e308 loaded and predicted NaN; a log_prior of the wrong length loaded
    and failed only at predict, with a backend's message."""
    path = _saved_model(tmp_path, Decision.logit_adjustment(1.0, [50, 30, 20]), 3)
    assert np.isfinite(lossearch.load_model(path).predict(np.zeros((2, 4)), verbose=0)).all()
    _edit_decision(path, lambda d: d.update(tau=1e308))
    with pytest.raises(ValueError, match=r"decision.tau: expected a number in \[-100, 100\]"):
        lossearch.load_model(path)
    path = _saved_model(tmp_path, Decision.logit_adjustment(1.0, [50, 30, 20]), 3)
    _edit_decision(path, lambda d: d.update(log_prior=d["log_prior"][:2]))
    with pytest.raises(ValueError, match="the decision rule has 2 classes .* output has 3 unit"):
        lossearch.load_model(path)


def test_a_keras_file_cut_short_says_so(tmp_path):
    path = _saved_model(tmp_path, Decision.thresholds(0.3), 1)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="not a complete .keras file"):
        lossearch.load_model(path)


def test_deep_nesting_and_huge_strings_are_refused_in_a_few_hundred_characters(tmp_path):
    """On main: a RecursionError, and a 10 MB family echoed whole in the error."""
    deep = '{"format": "lossearch.loss/1", "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ValueError, match="nested too deeply"):
        LossConfig.from_json(deep)
    with pytest.raises(ValueError, match="unknown loss family") as huge:
        LossConfig("x" * 10_000_000)
    assert len(str(huge.value)) < 1000 and "10000002 characters" in str(huge.value)
    space = tmp_path / "space.yaml"
    space.write_text("families: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ValueError, match="nested too deeply"):
        SearchSpace.load(str(space))
