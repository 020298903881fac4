"""The data boundary: every accepted ``data`` form is checked and normalised here.

``optimize`` accepts ``(x, y)``, ``((x, y), (x_val, y_val))``, ``{"train": ...,
"validation": ...}`` or a pair of ``tf.data.Dataset``. :func:`prepare_data`
validates it once (shapes, label ranges, empty classes, NaN features) and returns a
:class:`PreparedData` that the trial runner trusts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossearch._validation import shown

LABEL_FORMATS = ("sparse", "onehot", "binary", "multihot")
# A class with fewer validation samples than this cannot be judged on its own: optimize
# warns, and cv="auto" scores out-of-fold instead.
MIN_VALIDATION_SUPPORT = 5
AUTO_FOLDS = 3
FLOAT32_MAX = float(np.finfo(np.float32).max)  # larger features become inf in the model
DEFAULT_VALIDATION = 0.2  # the hold-out fraction when validation= is not given


@dataclass
class Split:
    """Arrays of one training/validation split."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any


@dataclass
class PreparedData:
    """Validated data and the facts the search needs about it.

    ``y_*`` keep the user's label format for ``fit``; :meth:`targets` gives the
    labels metrics use (class indices, or 0/1 per label).
    """

    task: str
    label_format: str
    num_outputs: int
    class_counts: list[int]
    class_names: list[str]
    splits: list[Split] = field(default_factory=list)
    cv: int | None = None
    datasets: tuple[Any, Any] | None = None
    n_samples: int = 0  # samples a trial trains on (the first split's)
    validation: float | None = None  # the hold-out fraction (None: folds or a given set)
    test: tuple[np.ndarray, np.ndarray] | None = None  # (x, targets): scored once, at the end
    cv_note: str = ""  # why cv="auto" chose out-of-fold scoring
    # All labelled data in the order given, when the splits were cut from it: the refit trains
    # on exactly what a user's own ``fit(x, y)`` would, batch for batch.
    pool: tuple[Any, Any] | None = None
    text_labels: bool = False  # the user's labels were text: test labels must be text too

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    @property
    def scoring(self) -> str:
        """How trials are scored, in words (for the summary and the MLflow parent run)."""
        if self.cv_note:
            return self.cv_note
        return f"out-of-fold with cv={self.cv}" if self.cv else "one validation split"

    def targets(self, y) -> np.ndarray:
        """Labels for metrics: class indices (multiclass) or 0/1 per label, samples flattened."""
        y = np.asarray(y)
        if self.label_format == "onehot":
            return y.reshape(-1, y.shape[-1]).argmax(-1)
        if self.label_format == "sparse":
            return y.reshape(-1).astype(np.int64)
        return y.reshape(-1, self.num_outputs).astype(np.int64)

    @property
    def validation_targets(self) -> np.ndarray:
        """Every validation label in evaluation order (out-of-fold order with ``cv``)."""
        return np.concatenate([self.targets(s.y_val) for s in self.splits])

    @property
    def all_counts(self) -> list[int] | None:
        """Class counts of all labelled data (the refit's), or None for ``tf.data`` inputs."""
        if self.datasets is not None:
            return None
        y = self.train_val[1]
        return _counts(np.asarray(y), self.label_format, self.num_outputs, "training").tolist()

    @property
    def train_val(self) -> tuple[Any, Any]:
        """All labelled data (train + validation) for the final refit, in the user's order
        when the splits were cut from one ``(x, y)``."""
        if self.pool is not None:
            return self.pool
        if self.datasets is not None:
            train, val = self.datasets
            return train.concatenate(val), None
        s = self.splits[0]  # with cv, any fold's train + validation is all the data
        return np.concatenate([s.x_train, s.x_val]), np.concatenate([s.y_train, s.y_val])


def _as_array(value, name: str) -> np.ndarray:
    if hasattr(value, "tocsr") and hasattr(value, "toarray"):  # scipy.sparse
        raise ValueError(
            f"{name}: expected a dense array, got a sparse {type(value).__name__}; pass "
            "x.toarray() (Keras trains on dense batches)."
        )
    if hasattr(value, "to_numpy"):  # pandas
        value = value.to_numpy()
    try:
        array = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(
            f"{name}: expected an array, got {type(value).__name__} ({exc})."
        ) from None
    if array.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got an object array.")
    if array.ndim == 0:
        raise ValueError(f"{name}: expected an array with one row per sample, got a scalar.")
    return array


def _check_features(x, name: str):
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(
            f"{name}: expected real features, got complex dtype {x.dtype} (Keras would drop "
            "the imaginary part); pass e.g. its real and imaginary parts as features."
        )
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise ValueError(f"{name}: expected numeric features, got dtype {x.dtype}.")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if x.dtype.itemsize > 4:  # float32 is what the model computes in
            bad |= np.abs(x) > FLOAT32_MAX
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(
                f"{name}: {int(bad.sum())} NaN, infinite or beyond-float32 feature value(s) "
                f"(first in sample {row}); impute, drop or scale them before searching."
            )


def _check_pair(x, y, name: str):
    x, y = _as_array(x, f"{name} x"), _as_array(y, f"{name} y")
    if len(x) != len(y):
        raise ValueError(
            f"data: {name} x has {len(x)} samples but {name} y has {len(y)}; they must match."
        )
    if len(x) == 0:
        raise ValueError(f"data: {name} set is empty.")
    _check_features(x, f"data: {name} x")
    if (not np.issubdtype(y.dtype, np.number) and y.dtype != bool) or np.iscomplexobj(y):
        raise ValueError(f"data: {name} y must hold numeric labels, got dtype {y.dtype}.")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"data: {name} y contains NaN or infinite labels.")
    return x, y


def _whole_numbers(values: np.ndarray) -> bool:
    return bool(np.all(values >= 0) and np.all(np.mod(values, 1) == 0))


def _few(values: np.ndarray, limit: int = 5) -> str:
    shown_ = ", ".join(str(int(v)) for v in values[:limit])
    return shown_ + (", ..." if len(values) > limit else "")


def _label_format(
    y: np.ndarray, output_shape: tuple, activation: str | None, task: str | None = None
) -> str:
    """How labels relate to the model output ``(None, ..., width)``; ``task`` (optimize's
    ``task=``), when given, settles what the rows alone leave open and must fit the rest."""
    found = _inferred_format(y, output_shape, activation, task)
    if task is not None and TASK_OF_FORMAT[found] != task:
        ends = f" ending in {activation}" if activation else ""
        raise ValueError(
            f"task: {task!r} does not fit labels of shape {y.shape[1:]} per sample on a model "
            f"output of shape {tuple(output_shape[1:])}{ends}, which make it "
            f"{TASK_OF_FORMAT[found]}; change the model's last layer or the labels."
        )
    return found


def _inferred_format(y, output_shape: tuple, activation: str | None, task: str | None) -> str:
    width = output_shape[-1]
    out_rank = len(output_shape)  # includes the batch axis
    if y.ndim == out_rank - 1 and width != 1:
        return "sparse"
    if y.ndim == out_rank and y.shape[-1] == 1 and width != 1:
        return "sparse"
    if width == 1:
        return "binary"
    if y.ndim != out_rank or y.shape[-1] != width:
        raise ValueError(
            f"data: labels of shape {y.shape[1:]} per sample do not fit a model output of "
            f"shape {tuple(output_shape[1:])}; pass class indices or one column per output."
        )
    rows = y.reshape(-1, width)
    if not np.all((rows == 0) | (rows == 1)):
        raise ValueError(
            "data: labels with one column per output must be one-hot (multiclass) or 0/1 "
            "multi-hot (multi-label)."
        )
    if activation == "sigmoid" or task == "multilabel":  # independent outputs
        return "multihot"
    sums = rows.sum(-1)
    odd = np.flatnonzero(sums != 1)
    if odd.size == 0:
        return "onehot"
    # Multi-label only where the model allows it (no softmax) and the rows say so clearly:
    # a stray row with two ones in one-hot labels is a mistake, not a task (main turned
    # the whole search multi-label on one such row, even on a softmax model).
    if task == "multiclass" or activation == "softmax" or odd.size < max(2, 0.01 * len(rows)):
        listed = ", ".join(f"{i} ({int(sums[i])} ones)" for i in odd[:5])
        listed += " and more" if odd.size > 5 else ""
        why = (
            "but the model ends in softmax: one class per sample"
            if activation == "softmax"
            else "but task='multiclass': one class per sample"
            if task == "multiclass"
            else "while the rest are: too few to call the labels multi-label (task= settles it)"
        )
        raise ValueError(
            f"data: {odd.size} of {len(rows)} label rows are not one-hot (row(s) {listed}), "
            f"{why}. Fix those rows; for multi-label data, end the model in a sigmoid layer."
        )
    return "multihot"


TASK_OF_FORMAT = {
    "sparse": "multiclass",
    "onehot": "multiclass",
    "binary": "binary",
    "multihot": "multilabel",
}


def _counts(y: np.ndarray, label_format: str, width: int, name: str) -> np.ndarray:
    if label_format == "sparse":
        flat = y.reshape(-1)
        if not np.all(flat == np.round(flat)):
            raise ValueError(f"data: {name} y holds non-integer class labels.")
        flat = flat.astype(np.int64)
        if flat.min() < 0 or flat.max() >= width:
            bad = flat[(flat < 0) | (flat >= width)][0]
            classes = int(flat.max()) + 1
            if flat.min() >= 0 and classes <= 10 * width + 10:  # class indices: the model's short
                raise ValueError(
                    f"data: {name} y has labels 0 to {classes - 1} ({classes} classes), but the "
                    f"model has {width} outputs; give its last layer {classes} units (or check "
                    f"the labels: {bad} is outside [0, {width}))."
                )
            raise ValueError(
                f"data: {name} y has label {bad}, outside [0, {width}) for a model with "
                f"{width} outputs."
            )
        return np.bincount(flat, minlength=width)
    if label_format == "onehot":
        return y.reshape(-1, width).sum(0).astype(np.int64)
    flat = y.reshape(-1, width)
    if not np.all((flat == 0) | (flat == 1)):
        if label_format == "binary" and _whole_numbers(flat):  # class indices, one output
            classes = len(np.unique(flat))
            raise ValueError(
                f"data: {name} y has {classes} distinct labels ({_few(np.unique(flat))}), but "
                f"the model has 1 output, which makes it a binary (0/1) classifier; give its "
                f"last layer {int(flat.max()) + 1} units for {int(flat.max()) + 1} classes."
            )
        raise ValueError(f"data: {name} y must be 0/1 for a model with sigmoid outputs.")
    if label_format == "binary":
        positives = int(flat.sum())
        return np.array([len(flat) - positives, positives])
    return flat.sum(0).astype(np.int64)


def _check_all_present(counts, names, where: str, hint: str):
    empty = [names[i] for i in np.flatnonzero(np.asarray(counts) == 0)]
    if empty:
        raise ValueError(f"data: class {shown(empty[0])} has no samples in the {where} set. {hint}")


def _stratify_key(y: np.ndarray, label_format: str, counts) -> np.ndarray:
    """One class per sample to stratify on: its label, or its rarest positive/class."""
    if label_format == "sparse" and y.ndim == 1:
        return y.astype(np.int64)
    if label_format == "onehot" and y.ndim == 2:
        return y.argmax(-1)
    if label_format == "binary":
        return y.reshape(len(y), -1).max(-1).astype(np.int64)
    # dense (per-pixel) or multi-label: the rarest class a sample contains
    rarity = np.argsort(np.argsort(counts))  # 0 = rarest
    width = len(counts)
    if label_format == "sparse":
        flat = y.reshape(len(y), -1).astype(np.int64)
        present = np.zeros((len(y), width), bool)
        np.put_along_axis(present, flat, True, axis=1)
    else:
        present = y.reshape(len(y), -1, y.shape[-1]).max(1) > 0
        if label_format == "multihot" and width != present.shape[-1]:  # pragma: no cover
            present = present[:, :width]
    keyed = np.where(present, rarity[None, :], width)
    return keyed.argmin(-1) if keyed.size else np.zeros(len(y), np.int64)


def prepare_data(
    data,
    *,
    output_shape: tuple,
    activation: str | None,
    validation: float | None = None,
    cv: int | str | None = None,
    class_names: list[str] | None = None,
    seed: int | None = None,
    task: str | None = None,
) -> PreparedData:
    """Check ``data`` against the model's output and split it (``task``: what the labels
    are, where they alone leave it open; None infers it).

    ``cv``: ``None`` for one stratified ``validation`` hold-out (default 20%), ``k`` for
    stratified k-fold, ``"auto"`` for :func:`auto_folds`'s choice (the hold-out unless it
    would leave a class too few validation samples; an explicit ``validation`` keeps it).

    Raises:
        ValueError: naming the argument and what was expected.
    """
    auto = cv == "auto"
    if auto:
        cv = None  # resolved below, once the class sizes are known

    train, val, class_names, text_labels = _unpacked(data, class_names, output_shape)
    if _is_tf_dataset(train):
        if cv is not None:
            raise ValueError("cv: cross-validation needs arrays, not tf.data.Dataset inputs.")
        return _prepare_datasets(train, val, output_shape, activation, class_names, task)

    x, y = _check_pair(*train, "training")
    if val is not None:
        x_val, y_val = _check_validation_set(val, x, cv, validation)
    label_format = _label_format(y, output_shape, activation, task)
    width = output_shape[-1]
    names = _class_names(class_names, label_format, width)
    counts = _counts(y, label_format, width, "training")
    prepared = PreparedData(
        task=TASK_OF_FORMAT[label_format],
        label_format=label_format,
        num_outputs=width,
        class_counts=[],
        class_names=names,
        cv=cv,
        n_samples=len(x),
        text_labels=text_labels,
    )
    if val is not None:
        _label_format(y_val, output_shape, activation, task)  # the same on validation labels
        _check_all_present(counts, names, "training", "Every class needs training samples.")
        val_counts = _counts(y_val, label_format, width, "validation")
        _check_all_present(val_counts, names, "validation", "Add samples, or pass (x, y) with cv=.")
        prepared.splits, prepared.class_counts = [Split(x, y, x_val, y_val)], counts.tolist()
        return prepared

    empty = f"Every class needs samples; does the model have more outputs ({width}) than classes?"
    _check_all_present(counts, names, "training", empty)
    prepared.pool = (x, y)
    key = _stratify_key(y, label_format, counts)
    per_class = np.bincount(key, minlength=len(counts))
    if auto and validation is None:
        cv, prepared.cv_note = auto_folds(per_class, names)
        prepared.cv = cv
    if cv is not None:
        prepared.splits = _fold_splits(x, y, key, per_class, cv, seed)
    else:
        prepared.validation = DEFAULT_VALIDATION if validation is None else validation
        prepared.splits = _holdout_split(x, y, key, per_class, prepared.validation, names, seed)
    # Class counts of the data a trial trains on (with cv, the first fold's: n * (k-1)/k).
    hint = "Lower cv=." if cv else "Use a larger validation= fraction, or cv= for tiny classes."
    first = prepared.splits[0]
    prepared.class_counts = _counts(first.y_train, label_format, width, "training").tolist()
    _check_all_present(prepared.class_counts, names, "training", hint)
    if cv is None:
        val_counts = _counts(first.y_val, label_format, width, "validation")
        _check_all_present(val_counts, names, "validation", hint)
    prepared.n_samples = len(first.x_train)
    return prepared


def _check_validation_set(val, x, cv, validation):
    if cv is not None:
        raise ValueError("cv: pass either a validation set or cv=, not both.")
    if validation is not None:
        raise ValueError("validation: a validation set was given in data; drop validation=.")
    x_val, y_val = _check_pair(*val, "validation")
    if x_val.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"data: validation x has per-sample shape {x_val.shape[1:]}, training x has "
            f"{x.shape[1:]}."
        )
    return x_val, y_val


def _fold_splits(x, y, key, per_class, cv: int, seed) -> list[Split]:
    from sklearn.model_selection import StratifiedKFold

    smallest = int(per_class[per_class > 0].min())
    if smallest < cv:
        raise ValueError(
            f"cv: the rarest class has {smallest} sample(s), fewer than cv={cv} folds; lower "
            "cv or collect more samples."
        )
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed).split(x, key)
    return [Split(x[a], y[a], x[b], y[b]) for a, b in folds]


def _holdout_split(x, y, key, per_class, validation, names, seed) -> list[Split]:
    if per_class[per_class > 0].min() < 2:
        rare = names[int(np.flatnonzero((per_class > 0) & (per_class < 2))[0])]
        raise ValueError(
            f"data: class {shown(rare)} has fewer than 2 samples, so a validation split "
            f"cannot hold it "
            "on both sides; pass an explicit validation set or collect more samples."
        )
    train_idx, val_idx = stratified_holdout(key, validation, seed)
    return [Split(x[train_idx], y[train_idx], x[val_idx], y[val_idx])]


def auto_folds(per_class: np.ndarray, names: list[str]) -> tuple[int | None, str]:
    """``cv="auto"``: k folds when a 20% hold-out would leave a class too few samples.

    Returns the folds (``None``: keep the hold-out) and a sentence saying why.
    """
    present = per_class > 0
    held_out = np.maximum(1, np.round(DEFAULT_VALIDATION * per_class))  # as stratified_holdout
    thin = present & (held_out < MIN_VALIDATION_SUPPORT)
    smallest = int(per_class[present].min()) if present.any() else 0
    if not thin.any() or smallest < 2:
        return None, ""
    folds = min(AUTO_FOLDS, smallest)
    rare = int(np.flatnonzero(thin)[np.argmin(per_class[thin])])
    name = names[rare] if rare < len(names) else str(rare)
    return folds, (
        f"out-of-fold with cv={folds}, chosen automatically: in a 20% hold-out class {shown(name)} "
        f"would have {int(held_out[rare])} validation sample(s) (fewer than "
        f"{MIN_VALIDATION_SUPPORT})"
    )


def stratified_holdout(key: np.ndarray, fraction: float, seed: int | None):
    """Per class, ``round(fraction * n)`` samples to validation, but at least one on each side.

    Unlike largest-remainder stratification, a class with 2 or 3 samples is never
    left out of the validation set.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(key):
        members = rng.permutation(np.flatnonzero(key == cls))
        n_val = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return rng.permutation(train), rng.permutation(val)


def prepared_test(test_data, prepared: PreparedData, output_shape, activation) -> PreparedData:
    """``prepared`` with ``test_data``, ``(x, y)`` checked as the training set is (shape,
    labels of the same format and classes, finite features): it is scored once, at the end,
    and chooses nothing."""
    if test_data is None:
        return prepared
    if (
        not isinstance(test_data, tuple | list)
        or len(test_data) != 2
        or _is_tf_dataset(test_data[0])
    ):
        raise ValueError("test_data: expected arrays (x_test, y_test).")
    x, y = test_data
    labels = _label_array(y)
    if prepared.text_labels and labels is None:
        raise ValueError(
            f"test_data: the training labels are text ({shown(prepared.class_names)}), the "
            "test labels are not; give the test labels as the same text, so that each names "
            "its class."
        )
    if labels is not None:  # text labels: the training set's names say which index is which
        unknown = sorted(set(labels.ravel()) - set(prepared.class_names))
        if unknown:
            raise ValueError(
                f"test_data: label {shown(unknown[0])} is not one of the training set's classes "
                f"{shown(prepared.class_names)}."
            )
        y = np.vectorize(prepared.class_names.index, otypes=[np.int64])(labels)
    x, y = _check_pair(x, y, "test")
    if prepared.datasets is None and x.shape[1:] != prepared.splits[0].x_train.shape[1:]:
        raise ValueError(
            f"test_data: x has per-sample shape {x.shape[1:]}, training x has "
            f"{prepared.splits[0].x_train.shape[1:]}."
        )
    if _label_format(y, output_shape, activation, prepared.task) != prepared.label_format:
        raise ValueError("test_data: its labels are not in the training labels' format.")
    _counts(y, prepared.label_format, prepared.num_outputs, "test")  # labels in range
    prepared.test = (x, prepared.targets(y))
    return prepared


def _unpacked(data, class_names, output_shape):
    """``(train, validation or None, class_names, whether the labels were text)``, text
    labels encoded (arrays only)."""
    train, val = _unpack(data)
    if _is_tf_dataset(train) or _label_array(train[1]) is None:
        return train, val, class_names, False
    return (*_encoded_labels(train, val, class_names, output_shape), True)


def _encoded_labels(train, val, class_names, output_shape):
    """Text (or other non-numeric) labels, ``["fraud", "ok", ...]``, as class indices, once:
    in the order of ``class_names`` when given, else sorted, except that on a one-unit
    (binary) output the rarer label is the positive class, 1. The labels become the class
    names (``class_names``, the exported config, the reports). Numeric labels pass as they are."""
    y = _label_array(train[1])
    if y is None:
        return train, val, class_names
    y_val = None if val is None else _label_array(val[1])
    if val is not None and y_val is None:
        raise ValueError("data: the training labels are text, the validation labels are not.")
    seen = np.unique(y if y_val is None else np.concatenate([y.ravel(), y_val.ravel()]))
    if class_names is not None:
        names = [str(n) for n in class_names]
        unknown = [v for v in seen if v not in names]
        if unknown:
            raise ValueError(
                f"data: label {shown(str(unknown[0]))} is not one of class_names {shown(names)}."
            )
    elif output_shape[-1] == 1 and len(seen) == 2:  # binary: the rarer label is positive
        counts = [(int(np.sum(y == v)), str(v)) for v in seen]
        names = [name for _, name in sorted(counts, reverse=True)]
    else:
        names = [str(v) for v in seen]
    expected = 2 if output_shape[-1] == 1 else output_shape[-1]
    if len(names) < 2:
        raise ValueError(
            f"data: every label is {shown(names[0]) if names else 'missing'}: a classifier "
            "needs at least 2 classes in its labels. Check the label column or array."
        )
    if len(names) != expected:
        raise ValueError(
            f"data: the labels name {len(names)} classes ({shown(names)}), but the model has "
            f"{output_shape[-1]} output(s): give its last layer "
            f"{'1 unit (two classes) or ' if len(names) == 2 else ''}{len(names)} units, or, "
            f"when some of its {expected} classes are missing from these labels, pass "
            "class_names= naming them all, in output order."
        )
    index = {name: i for i, name in enumerate(names)}

    def encode(labels):
        return np.vectorize(index.__getitem__, otypes=[np.int64])(labels.astype(str))

    train = (train[0], encode(y))
    val = None if val is None else (val[0], encode(y_val))
    return train, val, names


def _label_array(labels) -> np.ndarray | None:
    """``labels`` as an array of text when they are text, else None (numeric labels)."""
    if hasattr(labels, "to_numpy"):  # pandas
        labels = labels.to_numpy()
    if not isinstance(labels, list | tuple | np.ndarray):
        return None
    array = np.asarray(labels)
    if (
        array.dtype.kind in "USO"
        and array.size
        and all(isinstance(v, str | np.str_) for v in array.ravel())
    ):
        return array.astype(str)
    return None


def _class_names(class_names, label_format: str, width: int) -> list[str]:
    expected = 2 if label_format == "binary" else width
    if class_names is None:
        return [str(i) for i in range(expected)]
    names = [str(n) for n in class_names]
    if len(names) != expected or len(set(names)) != len(names):
        raise ValueError(
            f"class_names: expected {expected} unique names (one per "
            f"{'class: negative, positive' if label_format == 'binary' else 'model output'}), "
            f"got {list(class_names)}."
        )
    return names


def _is_tf_dataset(value) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, tf.data.Dataset)


def _unpack(data):
    """``(train, validation or None)`` from every accepted form."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"train", "validation"})
        if "train" not in data or unknown:
            raise ValueError(
                "data: a dict needs the key 'train' (and optionally 'validation'), got keys "
                f"{sorted(data)}."
            )
        return data["train"], data.get("validation")
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ValueError(
            "data: expected (x, y), ((x, y), (x_val, y_val)), {'train': ..., 'validation': ...} "
            f"or a pair of tf.data.Dataset, got {type(data).__name__}."
        )
    first, second = data
    if _is_tf_dataset(first):
        if not _is_tf_dataset(second):
            raise ValueError("data: pass (train_dataset, validation_dataset), both tf.data.")
        return first, second
    if isinstance(first, tuple | list) and len(first) == 2:
        if not (isinstance(second, tuple | list) and len(second) == 2):
            raise ValueError("data: the validation part must be (x_val, y_val).")
        return tuple(first), tuple(second)
    return (first, second), None


# A tf.data dataset whose size TensorFlow cannot tell (after filter(), say) is read to its
# end once; this many elements without an end means it repeats forever.
MAX_DATASET_ELEMENTS = 1_000_000


def _dataset_labels(dataset, name: str) -> np.ndarray:
    """All labels of a dataset of ``(x, y)`` elements, in one pass that checks its features
    (finite, real) as arrays are checked; an endless dataset is refused, not read."""
    import tensorflow as tf

    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError(
            f"data: the {name} dataset repeats forever (.repeat() without a count); pass one "
            "pass over the data: lossearch sets the epochs."
        )
    labels = []
    for count, element in enumerate(dataset):
        if count >= MAX_DATASET_ELEMENTS:
            raise ValueError(
                f"data: the {name} dataset yielded {MAX_DATASET_ELEMENTS} elements without "
                "ending; does it repeat? Pass one pass over the data."
            )
        if not isinstance(element, tuple) or len(element) < 2:
            raise ValueError(f"data: the {name} dataset must yield (x, y) pairs.")
        features = element[0].values() if isinstance(element[0], dict) else [element[0]]
        for x in features:
            _check_features(np.asarray(x), f"data: the {name} dataset's x (element {count})")
        labels.append(np.asarray(element[1]))
    if not labels:
        raise ValueError(f"data: the {name} dataset is empty.")
    return np.concatenate([lab.reshape(-1, *lab.shape[1:]) for lab in labels])


def _prepare_datasets(train, val, output_shape, activation, class_names, task=None) -> PreparedData:
    y_train = _dataset_labels(train, "training")
    y_val = _dataset_labels(val, "validation")
    label_format = _label_format(y_train, output_shape, activation, task)
    width = output_shape[-1]
    names = _class_names(class_names, label_format, width)
    counts = _counts(y_train, label_format, width, "training")
    _check_all_present(counts, names, "training", "Every class needs training samples.")
    val_counts = _counts(y_val, label_format, width, "validation")
    _check_all_present(val_counts, names, "validation", "Add samples of it to the validation set.")
    return PreparedData(
        task=TASK_OF_FORMAT[label_format],
        label_format=label_format,
        num_outputs=width,
        class_counts=counts.tolist(),
        class_names=names,
        splits=[Split(train, y_train, val, y_val)],
        datasets=(train, val),
        n_samples=len(y_train),
    )
