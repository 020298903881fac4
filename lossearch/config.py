"""``LossConfig``: the one description of a loss, validated, JSON round-trippable.

A config carries the family, its parameters, the weight scheme and the training
class counts, so :meth:`LossConfig.build` rebuilds the exact Keras loss (weights
included) later, without the data.

Example:
    >>> config = LossConfig("focal", {"gamma": 1.0}, weights="inverse",
    ...                     class_counts=[900, 90, 10])
    >>> LossConfig.from_json(config.to_json()) == config
    True
    >>> loss = config.build()
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossearch import weights as weight_schemes
from lossearch._files import write_text
from lossearch._params import Param, number, number_or_list, plain, positive, resolve
from lossearch._validation import shown
from lossearch.decision import Decision
from lossearch.losses.families import SPECS, TASKS

if TYPE_CHECKING:
    import keras

FORMAT = "lossearch.loss/1"

# Config-level extras that need the class counts, resolved in ``build()``.
_CONFIG_PARAMS = {
    ("pos_weighted_bce", "pos_weight"): Param(
        1.0, number_or_list(positive(), allow=("balanced",)), "scalar, per label, or 'balanced'"
    ),
}


def family_params(family: str) -> dict[str, Param]:
    """The parameters a user sets for ``family`` (class counts come from the config)."""
    specs = {k: v for k, v in SPECS[family].params.items() if k != "class_counts"}
    for (fam, name), spec in _CONFIG_PARAMS.items():
        if fam == family:
            specs[name] = spec
    return specs


def _frozen(value):
    """Lists become tuples so configs compare equal after a JSON round trip."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _thawed(value):
    if isinstance(value, tuple | list):
        return [_thawed(v) for v in value]
    if isinstance(value, dict):
        return {k: _thawed(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class LossConfig:
    """A loss family, its parameters, class weighting and the data facts it needs.

    Args:
        family: one of :data:`lossearch.losses.FAMILIES` (``"ce"``, ``"focal"``, ...).
        params: the family's parameters; missing ones take their defaults.
        weights: a scheme of :data:`lossearch.weights.SCHEMES`.
        weight_params: the scheme's parameters (``beta``, ``normalize``, ...).
        label_smoothing: in ``[0, 1)``.
        drw_start: deferred re-weighting: weights stay 1 until this epoch (an
            int) or this fraction of the epochs (a float in (0, 1)).
        class_counts: training samples per class (binary: ``[n_neg, n_pos]``;
            multi-label: positives per label).
        class_names: a name per class, for messages and reports.
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        from_logits: whether the model outputs logits.
        n_samples: training samples in all (multi-label ``pos_weight="balanced"``).
        decision: the tuned decision rule (:class:`lossearch.decision.Decision` or its
            dict); ``None`` for arg-max / 0.5. It does not change the loss; apply it with
            :func:`lossearch.layers.with_decision`. Files without it load as ``None``.

    Raises:
        ValueError: naming the field, for anything unknown or out of range.
    """

    family: str = "ce"
    params: dict[str, Any] = field(default_factory=dict)
    weights: str = "none"
    weight_params: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.0
    drw_start: int | float | None = None
    class_counts: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None
    task: str = "multiclass"
    from_logits: bool = True
    n_samples: int | None = None
    decision: Decision | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        for name in ("label_smoothing", "drw_start", "n_samples"):  # NumPy scalars welcome
            set_(self, name, plain(getattr(self, name)))
        if isinstance(self.decision, dict):
            set_(self, "decision", Decision.from_dict(self.decision, source="decision"))
        elif self.decision is not None and not isinstance(self.decision, Decision):
            raise ValueError(
                f"decision: expected a decision block (dict) or None, got {shown(self.decision)}."
            )
        if not isinstance(self.task, str) or self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {shown(self.task)}.")
        if not isinstance(self.family, str) or self.family not in SPECS:
            raise ValueError(
                f"family: unknown loss family {shown(self.family)}; expected one of: "
                f"{', '.join(SPECS)}."
            )
        spec = SPECS[self.family]
        if self.task not in spec.tasks:
            raise ValueError(
                f"family: {shown(self.family)} is not valid for task {shown(self.task)}; it "
                f"supports "
                f"{list(spec.tasks)}."
            )
        if not isinstance(self.params, dict) or not isinstance(self.weight_params, dict):
            raise ValueError("params and weight_params: expected dicts of parameter values.")
        set_(self, "class_counts", self._checked_counts())
        set_(self, "class_names", self._checked_names())
        params = resolve("params", family_params(self.family), self.params)
        set_(self, "params", _frozen(params))
        weight_params = weight_schemes.resolve_scheme(self.weights, self.weight_params)
        set_(self, "weight_params", _frozen(weight_params))
        self._check_needs_counts(spec)
        self._check_per_class_lengths()
        problem = number(0.0, 1.0, high_open=True)(self.label_smoothing)
        if problem:
            raise ValueError(f"label_smoothing: {problem}.")
        set_(self, "label_smoothing", float(self.label_smoothing))
        self._check_drw()
        if not isinstance(self.from_logits, bool):
            raise ValueError(f"from_logits: expected true or false, got {shown(self.from_logits)}.")
        if self.n_samples is not None and (
            not isinstance(self.n_samples, int)
            or isinstance(self.n_samples, bool)
            or self.n_samples < 1
        ):
            raise ValueError(
                f"n_samples: expected a positive integer, got {shown(self.n_samples)}."
            )

    # -- validation -------------------------------------------------------------

    def _checked_counts(self):
        if self.class_counts is None:
            return None
        counts = weight_schemes.check_counts(self.class_counts, self.class_names)
        if self.task == "binary" and counts.size != 2:
            raise ValueError(
                f"class_counts: a binary task has 2 classes [n_negative, n_positive], got "
                f"{counts.size} counts."
            )
        if self.task == "multiclass" and counts.size < 2:
            raise ValueError("class_counts: a multiclass task needs at least 2 classes.")
        return tuple(int(c) for c in counts)

    def _checked_names(self):
        if self.class_names is None:
            return None
        names = tuple(str(n) for n in self.class_names)
        if len(set(names)) != len(names):
            raise ValueError(f"class_names: names must be unique, got {list(names)}.")
        if self.class_counts is not None and len(names) != len(self.class_counts):
            raise ValueError(
                f"class_names: {len(names)} names for {len(self.class_counts)} class counts."
            )
        return names

    def _check_needs_counts(self, spec):
        if self.class_counts is not None:
            return
        if spec.needs_counts:
            raise ValueError(
                f"class_counts: required by the {shown(self.family)} family (it uses the class "
                "prior); pass the training count of each class."
            )
        if weight_schemes.SCHEMES[self.weights].needs_counts:
            raise ValueError(
                f"class_counts: required by the {shown(self.weights)} weight scheme; pass the "
                "training count of each class."
            )
        if self.params.get("pos_weight") == "balanced":
            raise ValueError("class_counts: required by pos_weight='balanced'.")

    def _check_per_class_lengths(self):
        expected = self.num_classes
        for owner, values in (("params", self.params), ("weight_params", self.weight_params)):
            for name, value in values.items():
                if not isinstance(value, tuple):
                    continue
                if self.task == "binary" and owner == "params":
                    raise ValueError(f"params.{name}: a binary task takes a scalar, got a list.")
                if expected is not None and len(value) != expected:
                    raise ValueError(
                        f"{owner}.{name}: expected one value per class ({expected}), got "
                        f"{len(value)}."
                    )
        if (
            self.weights == "manual"
            and self.task == "binary"
            and len(self.weight_params["values"]) != 2
        ):
            raise ValueError("weight_params.values: a binary task takes 2 weights [neg, pos].")
        if (
            self.task == "multilabel"
            and self.params.get("pos_weight") == "balanced"
            and self.n_samples is None
        ):
            raise ValueError(
                "n_samples: pos_weight='balanced' on a multi-label task needs the total number "
                "of training samples (class_counts holds positives per label)."
            )

    def _check_drw(self):
        start = self.drw_start
        if start is None:
            return
        valid_int = isinstance(start, int) and not isinstance(start, bool) and start >= 0
        valid_fraction = isinstance(start, float) and 0.0 < start < 1.0
        if not (valid_int or valid_fraction):
            raise ValueError(
                f"drw_start: expected an epoch index (int >= 0) or a fraction of the epochs "
                f"(float in (0, 1)), got {shown(start)}."
            )
        if self.weights == "none":
            raise ValueError(
                "drw_start: deferred re-weighting needs a weight scheme; set weights= too."
            )

    # -- derived -----------------------------------------------------------------

    @property
    def num_classes(self) -> int | None:
        """Classes (binary: 2) or labels (multi-label), when the counts are known."""
        return None if self.class_counts is None else len(self.class_counts)

    def class_weight_vector(self) -> list[float] | None:
        """The static class weights this config applies, or ``None``."""
        scheme = weight_schemes.SCHEMES[self.weights]
        if self.weights == "none" or scheme.per_batch:
            return None
        return weight_schemes.class_weights(
            self.weights,
            self.class_counts,
            class_names=self.class_names,
            **_thawed(self.weight_params),
        ).tolist()

    def _loss_params(self) -> dict[str, Any]:
        params = _thawed(self.params)
        if params.get("pos_weight") == "balanced":
            positives = self.class_counts[1:] if self.task == "binary" else self.class_counts
            total = sum(self.class_counts) if self.task == "binary" else self.n_samples
            ratios = [(total - p) / p for p in positives]
            params["pos_weight"] = ratios[0] if self.task == "binary" else ratios
        if SPECS[self.family].needs_counts:
            params["class_counts"] = list(self.class_counts)
        return params

    # -- building and serialization -----------------------------------------------

    def build(self) -> keras.losses.Loss:
        """The Keras loss this config describes.

        Example:
            >>> loss = LossConfig("logit_adjusted", class_counts=[90, 10]).build()
        """
        from lossearch.losses import FAMILIES  # Keras, loaded only to build

        per_batch = weight_schemes.SCHEMES[self.weights].per_batch
        return FAMILIES[self.family](
            **self._loss_params(),
            task=self.task,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weights=self.class_weight_vector(),
            batch_weighting=_thawed(self.weight_params) if per_batch else None,
            deferred_weights=self.drw_start is not None,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {"format": FORMAT}
        data.update({f.name: _thawed(getattr(self, f.name)) for f in fields(self)})
        decision = data.pop("decision")
        if decision is not None:  # left out otherwise: the file stays readable by older versions
            data["decision"] = decision.to_dict()
        return data

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; also written to ``path`` when given (whole or not at all:
        through a temporary file renamed into place)."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> LossConfig:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}.")
        if data.get("format") != FORMAT:
            raise ValueError(
                f"{source}: 'format' must be {shown(FORMAT)}, got "
                f"{shown(data.get('format'))}; is this a "
                "lossearch loss config?"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ValueError(
                f"{source}: unknown key(s) {unknown}; valid keys: format, {', '.join(known)}."
            )
        values = {k: v for k, v in data.items() if k != "format"}
        return cls(**values)

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> LossConfig:
        """Parse JSON text or a JSON file. Never executes code; rejects unknown keys."""
        source = "config"
        text = text_or_path
        if isinstance(text_or_path, os.PathLike) or not str(text_or_path).lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                is_file = path.is_file()
            except (OSError, ValueError):  # too long, or a NUL byte: not a file name
                is_file = False
            if not is_file:
                raise ValueError(
                    f"config: no such file {shown(str(path)[:200])} (and not a JSON object's text)."
                )
            source, text = str(path), path.read_text(encoding="utf-8")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc}).") from None
        except RecursionError:  # a loss config nests three levels
            raise ValueError(f"{source}: JSON nested too deeply for a loss config.") from None
        return cls.from_dict(data, source)

    def describe(self) -> str:
        """A one-line summary, e.g. ``focal(gamma=2.0) + inverse weights``."""
        given = {k: v for k, v in self.params.items() if v is not None}
        text = f"{self.family}({', '.join(f'{k}={_short(v)}' for k, v in given.items())})"
        if self.weights != "none":
            text += f" + {self.weights} weights"
        if self.drw_start is not None:
            text += f" (DRW from {self.drw_start})"
        if self.label_smoothing:
            text += f", label smoothing {self.label_smoothing:g}"
        if self.decision is not None:
            text += f"; decision: {self.decision.describe()}"
        return text


def _short(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def _reject_constant(name: str):
    raise ValueError(f"config: {name} is not a valid value.")


def build_loss(config: LossConfig | dict | str | os.PathLike) -> keras.losses.Loss:
    """The Keras loss for a :class:`LossConfig`, a config dict, or JSON text/file."""
    if isinstance(config, dict):
        config = LossConfig.from_dict({"format": FORMAT, **config})
    elif not isinstance(config, LossConfig):
        config = LossConfig.from_json(config)
    return config.build()


def load_loss(path_or_json: str | os.PathLike) -> keras.losses.Loss:
    """Rebuild the exact loss saved with :meth:`LossConfig.to_json`.

    Example:
        >>> loss = load_loss('{"format": "lossearch.loss/1", "family": "ce"}')
    """
    return LossConfig.from_json(path_or_json).build()
