"""TensorFlow's start-up lines, kept off the terminal unless asked for.

Importing TensorFlow prints lines such as "Could not find cuda drivers", "cpu_feature_guard",
"All log messages before absl::InitializeLog()" and the oneDNN notice from C++, straight to
file descriptor 2 and before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. They say nothing about
the search, so lossearch imports TensorFlow with that descriptor pointed at /dev/null.
``LOSSEARCH_TF_LOGS=1`` shows them (a broken GPU set-up, say). Python errors are unaffected:
an exception raised by the import is still raised, and printed once the descriptor is back.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow now, without its start-up lines, if Keras will run on it."""
    if os.environ.get("LOSSEARCH_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no file descriptor 2 to point elsewhere
        return
    os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass  # Keras reports it, with the descriptor back
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    _quiet_python_logs()


def _quiet_python_logs() -> None:
    """TensorFlow's own Python warnings (``tf.function retracing``: each trial builds a new
    model, so the retracing is expected) would print through the progress bars."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
