"""Property-based fuzzing of the input boundary (Hypothesis): whatever a user passes to
``load_loss`` / ``LossConfig.from_json``, a space (dict or YAML file), a storage URL or
``prepare_data``, it ends in a valid object or a ``ValueError``, in bounded time, and no
error text repeats a password. The example counts are small enough for CI; raise them
locally with ``HYPOTHESIS_PROFILE=thorough``."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossearch import LossConfig, load_loss
from lossearch._secrets import mask_credentials
from lossearch.data import prepare_data
from lossearch.search_space import SearchSpace
from lossearch.study.storages import open_storage

settings.register_profile(
    "ci", max_examples=40, deadline=5000, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=1000, deadline=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

VALID_CONFIG = {
    "format": "lossearch.loss/1",
    "family": "focal",
    "task": "multiclass",
    "params": {"gamma": 2.0},
    "weights": "inverse",
    "class_counts": [90, 10],
}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
CONFIG_KEYS = [*VALID_CONFIG, "label_smoothing", "drw_start", "weight_params", "decision"]


@st.composite
def mutated_configs(draw):
    """A valid config with a few keys replaced by arbitrary JSON values (or removed)."""
    config = json.loads(json.dumps(VALID_CONFIG))
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=3)):
        if draw(st.booleans()):
            config[key] = draw(json_values)
        else:
            config.pop(key, None)
    return config


def ends_well(call):
    """``call()`` returns, or raises ValueError; anything else is a bug at the boundary."""
    try:
        return call()
    except ValueError as exc:
        return exc


@given(st.one_of(mutated_configs(), json_values))
def test_any_config_json_builds_a_loss_or_is_a_value_error(config):
    text = json.dumps(config)  # NaN and Infinity tokens included: Python writes them
    ends_well(lambda: load_loss(text))
    ends_well(lambda: LossConfig.from_json(text))


space_values = st.dictionaries(
    st.sampled_from(["families", "weights", "label_smoothing", "drw_start", "recipes", "name"]),
    json_values,
    max_size=4,
)


@given(space_values)
def test_any_space_dict_loads_or_is_a_value_error(space):
    ends_well(lambda: SearchSpace.from_dict(space))


@given(st.text(max_size=300))
def test_any_space_file_loads_or_is_a_value_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "space.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        ends_well(lambda: SearchSpace.load(str(path)))


secrets = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.~!$*", min_size=4, max_size=12).map(
    lambda s: f"Pw{s}"
)


@given(
    scheme=st.sampled_from(["postgresql", "mysql", "redis", "rediss", "journal", "ftp", "sqlite"]),
    user=st.text("abcxyz", max_size=5),
    secret=secrets,
    in_query=st.booleans(),
    tail=st.text("abc/?&=;#:", max_size=10),
)
@settings(deadline=20000)
def test_storage_urls_open_or_fail_without_echoing_the_password(
    scheme, user, secret, in_query, tail
):
    with tempfile.TemporaryDirectory() as folder:
        where = f"/{folder}/missing/db" if scheme in ("sqlite", "journal") else "127.0.0.1:1/db"
        url = (
            f"{scheme}://{user}@{where}?password={secret}{tail}"
            if in_query
            else f"{scheme}://{user}:{secret}@{where}{tail}"
        )
        assert secret not in mask_credentials(url)
        outcome = ends_well(lambda: open_storage(url, heartbeat_interval=None))
        assert isinstance(outcome, ValueError), url  # nothing answers at these addresses
        assert secret not in str(outcome)


@st.composite
def datasets(draw):
    """Arrays a user might pass: odd shapes, NaN or infinite features, labels of any range."""
    n = draw(st.integers(0, 40))
    width = draw(st.integers(1, 4))
    x = draw(
        st.sampled_from(
            [np.zeros((n, width)), np.full((n, width), np.nan), np.ones((n,)), np.ones((n, 2, 2))]
        )
    ).astype(draw(st.sampled_from(["float32", "float64", "int64"])), copy=True)
    labels = draw(st.lists(st.integers(-2, 5), min_size=n, max_size=n))
    y = np.array(labels, dtype=draw(st.sampled_from(["int64", "float32"])))
    if draw(st.booleans()):
        y = y.reshape(-1, 1)
    if draw(st.booleans()) and n:
        y = y[:-1]  # one label short
    return x, y


@given(
    data=datasets(),
    outputs=st.integers(1, 4),
    cv=st.sampled_from([None, "auto", 3]),
    validation=st.sampled_from([None, 0.2, 0.5]),
)
@settings(deadline=10000)
@pytest.mark.filterwarnings("ignore")
def test_any_arrays_are_prepared_or_a_value_error(data, outputs, cv, validation):
    ends_well(
        lambda: prepare_data(
            data,
            output_shape=(None, outputs),
            activation=None,
            cv=cv,
            validation=validation if cv is None else None,
            seed=0,
        )
    )
