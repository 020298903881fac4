"""Fresh MLflow SQLite stores for the tests, each a copy of one migrated empty store.

MLflow builds a new SQLite store by running its schema migrations, about 2.6 s of CPU, and the
suite makes some twenty stores (its own, the examples', the servers'). The first is built by
MLflow itself; the others are byte copies of it, with the default experiment's artifacts
beside the copy. Each is still a real store, the same as a user's after a first run.
"""

import atexit
import fcntl
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

# Set by conftest.py in the first pytest process, so that its xdist workers share one template.
TEMPLATE_FOLDER = "LOSSEARCH_TEST_MLFLOW_TEMPLATE"


def template_folder() -> str:
    """The folder of this test session's template, removed when the process that made it ends."""
    if TEMPLATE_FOLDER not in os.environ:
        folder = tempfile.mkdtemp(prefix="lossearch-mlflow-template-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[TEMPLATE_FOLDER] = folder
    return os.environ[TEMPLATE_FOLDER]


def _template() -> Path:
    folder = Path(template_folder())
    store = folder / "mlflow.db"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process builds it, the others wait and copy
        if not store.exists():
            import mlflow

            building = folder / "building.db"
            mlflow.MlflowClient(f"sqlite:///{building}").search_experiments()
            building.rename(store)
    return store


def new_store(path: Path, default_artifacts: str | None = None) -> str:
    """A new, empty, migrated MLflow store at ``path``; its ``sqlite:///`` URI.

    ``default_artifacts``: the default experiment's artifact location (``mlruns/0`` beside the
    store when not given; a server's is ``mlflow-artifacts:/0``). A store already there is kept.
    """
    path = Path(path)
    if not path.exists():
        shutil.copyfile(_template(), path)
        location = default_artifacts or str(path.parent / "mlruns" / "0")
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (location,)
            )
        db.close()
    return f"sqlite:///{path}"
