"""Shared test setup: quiet TensorFlow, deterministic seeds, small helpers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# One numeric thread per process (inherited by the workers, examples and children the tests
# start): the suite runs three pytest workers and their subprocesses on two cores, and a
# second thread per op on these tiny models only spins, costing about a tenth of the CPU.
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import pytest  # noqa: E402

from tests.mlflow_store import new_store, template_folder  # noqa: E402

template_folder()  # here, in the first pytest process: its xdist workers inherit the folder


@pytest.fixture(autouse=True)
def _seeded():
    import keras  # here, not above: the xdist controller runs no test and needs no TensorFlow

    keras.utils.set_random_seed(0)
    yield
    # No gc.collect (free_memory): with TensorFlow loaded it costs ~0.4 s a test.
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """One real MLflow tracking store (SQLite) for the session; tests use their own experiments."""
    return new_store(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


@pytest.fixture
def experiment(request):
    """A fresh experiment name per test."""
    import re
    import uuid

    return re.sub(r"\W", "_", request.node.name)[:60] + "_" + uuid.uuid4().hex[:6]


# Seconds of work per file, from `pytest -n 3 --dist loadfile --durations=40` (2026-12-02; all
# others take under a minute). xdist hands out whole files in collection order: the longest
# go first, so that the three workers finish together instead of one starting a
# four-minute file at the end.
LONGEST_FILES = {
    "test_optimize.py": 350,
    "test_examples_and_cli.py": 320,
    "test_child_process.py": 310,
    "test_scaleout.py": 280,
    "test_worker_failures.py": 205,
    "test_keras_tuner.py": 200,
    "test_browser.py": 130,
    "test_optuna_integration.py": 105,
    "test_bookkeeping.py": 70,
    "test_durability.py": 60,
}


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -LONGEST_FILES.get(item.path.name, 0))  # stable: order kept


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real MLflow tracking server for the module."""
    from tests.mlflow_server import MlflowServer

    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as running:
        yield running


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database per test (the server is started by .ci/run)."""
    import uuid

    import psycopg

    name = f"lossearch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
