"""Per-worker resource limits, so several workers can share one machine."""

from __future__ import annotations

import os

from lossearch._validation import Interval, check

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(n: int) -> None:
    """Run this process's numeric work on at most ``n`` threads.

    Call it before the first model is built (TensorFlow fixes its thread pools
    when it first runs an op). Works for the TensorFlow, JAX and PyTorch backends.

    Example:
        >>> lossearch.limit_threads(1)  # doctest: +SKIP
    """
    check("threads", n, [Interval(int, 1, None)])
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(n)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError as exc:  # TensorFlow already ran an op
            raise ValueError(
                f"threads: TensorFlow is already initialised ({exc}); limit threads first."
            ) from None
    elif backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
        ).strip()
    elif backend == "torch":
        import torch

        torch.set_num_threads(n)
