"""Class weight schemes.

Static schemes are computed once from the **training-set class counts** with
:func:`class_weights`; the ``batch`` scheme is computed inside the loss from the
labels of each batch with :func:`batch_class_weights`. Softmax losses weight a
sample by its true class; sigmoid losses weight the positive term of each label
(binary: ``[w_negative_class, w_positive_class]``).

After computation the weights are rescaled by ``normalize``:

* ``"mean"`` (default): they average 1 over classes (sum = C);
* ``"sum"``: they sum to 1;
* ``"none"``: the scheme's raw formula (``inverse`` then equals scikit-learn's
  ``class_weight="balanced"``).

Example:
    >>> class_weights("inverse", [900, 90, 10]).round(3).tolist()
    [0.03, 0.3, 2.67]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lossearch._params import Param, number, one_of, positive, resolve
from lossearch._validation import shown

NORMALIZE = Param("mean", one_of("mean", "sum", "none"), "rescaling: mean 1, sum 1, or raw")


@dataclass(frozen=True)
class WeightScheme:
    """A named scheme with its parameters; ``per_batch`` ones are computed in the loss."""

    name: str
    formula: str
    params: dict[str, Param] = field(default_factory=dict)
    per_batch: bool = False

    @property
    def needs_counts(self) -> bool:
        return self.name not in ("none", "manual", "batch")


SCHEMES: dict[str, WeightScheme] = {
    s.name: s
    for s in [
        WeightScheme("none", "1"),
        WeightScheme("inverse", "N / (C * n_j)", {"normalize": NORMALIZE}),
        WeightScheme("inverse_sqrt", "sqrt(N / (C * n_j))", {"normalize": NORMALIZE}),
        WeightScheme(
            "effective_number",
            "(1 - beta) / (1 - beta^n_j)",
            {
                "beta": Param(0.999, number(0.0, 1.0, high_open=True), "in [0, 1)"),
                "normalize": NORMALIZE,
            },
        ),
        WeightScheme("median_frequency", "median(f) / f_j", {"normalize": NORMALIZE}),
        WeightScheme(
            "batch",
            "1 / (n_j(batch) + smoothing)",
            {
                "smoothing": Param(1.0, number(0.0), "added to each batch count"),
                "normalize": NORMALIZE,
            },
            per_batch=True,
        ),
        WeightScheme(
            "manual",
            "user values",
            {
                "values": Param(None, lambda v: _check_values(v), "one positive weight per class"),
                "normalize": NORMALIZE,
            },
        ),
    ]
}


def _check_values(values) -> str | None:
    if not isinstance(values, list | tuple) or not values:
        return f"expected a list with one positive weight per class, got {shown(values)}"
    bad = [v for v in values if positive()(v)]
    return f"expected positive numbers, got {shown(bad[0])}" if bad else None


def resolve_scheme(name: str, params: dict | None) -> dict:
    """Checked parameters of scheme ``name`` with defaults filled in."""
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(
            f"weights: unknown weight scheme {shown(name)}; expected one of: {', '.join(SCHEMES)}."
        )
    return resolve("weight_params", SCHEMES[name].params, params)


MAX_COUNT = 2**53  # beyond it a float64 count is no longer a whole number


def check_counts(counts, class_names: Sequence[str] | None = None, owner="class_counts"):
    """Counts as an int array, or a ``ValueError`` naming a negative or empty class."""
    array = np.asarray(counts)
    if array.ndim != 1 or array.size < 1 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{owner}: expected a list of per-class counts, got {shown(counts)}.")
    if (
        not np.all(np.isfinite(array))
        or np.any(array < 0)
        or np.any(array > MAX_COUNT)
        or np.any(array != np.round(array))
    ):
        raise ValueError(
            f"{owner}: counts must be whole numbers in [0, 2**53], got {shown(list(counts))}."
        )
    names = list(class_names) if class_names is not None else list(range(array.size))
    empty = [names[i] for i in np.flatnonzero(array == 0)]
    if empty:
        raise ValueError(
            f"{owner}: class {shown(empty[0])} has zero training samples; every class needs "
            "at least one (drop the class or collect samples for it)."
        )
    return array.astype(np.int64)


def _normalize(weights: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "mean":
        return weights * (weights.size / weights.sum())
    if normalize == "sum":
        return weights / weights.sum()
    return weights


def class_weights(
    scheme: str,
    counts: Sequence[int] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    **params,
) -> np.ndarray:
    """Static weights, one per class, for ``scheme`` from training ``counts``.

    Args:
        scheme: a name in :data:`SCHEMES` other than ``"batch"``.
        counts: training samples per class (binary: ``[n_negative, n_positive]``;
            multi-label: positives per label).
        class_names: used in error messages.
        **params: the scheme's parameters (``beta``, ``values``, ``normalize``).

    Example:
        >>> class_weights("effective_number", [1000, 10], beta=0.0).tolist()
        [1.0, 1.0]
    """
    params = resolve_scheme(scheme, params)
    if SCHEMES[scheme].per_batch:
        raise ValueError("weights: the 'batch' scheme is computed per batch inside the loss.")
    if scheme == "manual":
        raw = np.asarray(params["values"], dtype=np.float64)
        return _normalize(raw, params["normalize"])
    if scheme == "none":
        return np.ones(len(counts)) if counts is not None else np.ones(1)
    n = check_counts(counts, class_names).astype(np.float64)
    total, num_classes = n.sum(), n.size
    if scheme == "inverse":
        raw = total / (num_classes * n)
    elif scheme == "inverse_sqrt":
        raw = np.sqrt(total / (num_classes * n))
    elif scheme == "effective_number":
        beta = params["beta"]
        # (1 - beta) / (1 - beta^n), with 1 - beta^n = -expm1(n log beta) exact near beta = 1.
        raw = (1.0 - beta) / -np.expm1(n * np.log(beta)) if beta else np.ones_like(n)
    else:  # median_frequency
        freq = n / total
        raw = np.median(freq) / freq
    return _normalize(raw, params["normalize"])


def batch_class_counts(labels, task: str):
    """Samples per class in one batch of dense labels (binary: ``[neg, pos]``)."""
    from keras import ops  # Keras tensors, in training only

    flat = ops.reshape(labels, (-1, ops.shape(labels)[-1]))
    positives = ops.sum(flat, axis=0)
    if task == "binary":
        total = ops.cast(ops.shape(flat)[0], labels.dtype)
        return ops.concatenate([total - positives, positives], axis=0)
    return positives


def batch_class_weights(labels, *, task: str, smoothing: float = 1.0, normalize: str = "mean"):
    """Inverse frequency of each class in this batch, finite when a class is absent.

    ``w_j = 1 / (n_j + smoothing)``, rescaled over the classes present in the
    batch (absent classes get weight 0; they carry no samples anyway).
    """
    from keras import ops  # Keras tensors, in training only

    counts = batch_class_counts(labels, task)
    present = ops.cast(counts > 0, counts.dtype)
    safe = ops.where(counts > 0, counts + smoothing, 1.0)
    raw = present / safe
    # A multi-label batch may hold no positive at all: then every weight is 0.
    total = ops.maximum(ops.sum(raw), 1e-12)
    if normalize == "mean":
        return raw * ops.sum(present) / total
    if normalize == "sum":
        return raw / total
    num_classes = ops.cast(ops.shape(counts)[0], counts.dtype)
    return raw * ops.sum(counts) / num_classes
