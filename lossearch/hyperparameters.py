"""The ``hp`` object handed to ``build_model(hp)``: Keras Tuner's vocabulary
(``Float``, ``Int``, ``Choice``, ``Boolean``, ``Fixed``) over whichever backend runs
the search, so a model's own hyperparameters are tuned together with the loss.

Example:
    >>> def build_model(hp):
    ...     lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    ...     ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RESERVED = ("family", "weights", "label_smoothing", "drw_start")


class HyperParameters:
    """Keras Tuner's ``hp`` API; subclasses implement the three ``_suggest_*`` methods."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def _check_name(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"hp: a hyperparameter needs a non-empty string name, got {name!r}.")
        if name in RESERVED or "." in name:
            raise ValueError(
                f"hp: the name {name!r} is reserved for the loss search (names without dots, not "
                f"{', '.join(RESERVED)})."
            )

    def Float(  # noqa: N802 - Keras Tuner's spelling
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
    ) -> float:
        self._check_name(name)
        if sampling not in ("linear", "log"):
            raise ValueError(f"hp.Float({name!r}): sampling must be 'linear' or 'log'.")
        value = self._suggest_float(name, min_value, max_value, step, sampling == "log", default)
        self.values[name] = value
        return value

    def Int(  # noqa: N802
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int = 1,
        sampling: str = "linear",
        default: int | None = None,
    ) -> int:
        self._check_name(name)
        value = self._suggest_int(name, min_value, max_value, step, sampling == "log", default)
        self.values[name] = value
        return value

    def Choice(  # noqa: N802
        self, name: str, values: Sequence[Any], ordered: bool | None = None, default: Any = None
    ) -> Any:
        self._check_name(name)
        if not values:
            raise ValueError(f"hp.Choice({name!r}): values must be a non-empty list.")
        value = self._suggest_choice(name, tuple(values), default)
        self.values[name] = value
        return value

    def Boolean(self, name: str, default: bool = False) -> bool:  # noqa: N802
        return self.Choice(name, [False, True], default=default)

    def Fixed(self, name: str, value: Any) -> Any:  # noqa: N802
        self._check_name(name)
        self.values[name] = value
        return value

    def get(self, name: str) -> Any:
        return self.values[name]

    def _suggest_float(self, name, low, high, step, log, default):  # pragma: no cover
        raise NotImplementedError

    def _suggest_int(self, name, low, high, step, log, default):  # pragma: no cover
        raise NotImplementedError

    def _suggest_choice(self, name, values, default):  # pragma: no cover
        raise NotImplementedError


class DefaultHyperParameters(HyperParameters):
    """Answers every ``hp`` call with its default (Keras Tuner's rule: ``default``,
    else the lower bound or the first value). Used to probe ``build_model``."""

    def _suggest_float(self, name, low, high, step, log, default):
        return low if default is None else default

    def _suggest_int(self, name, low, high, step, log, default):
        return low if default is None else default

    def _suggest_choice(self, name, values, default):
        return values[0] if default is None else default


class FixedHyperParameters(DefaultHyperParameters):
    """Replays a trial's ``hp`` values (defaults for anything it never drew)."""

    def __init__(self, values: dict):
        super().__init__()
        self.fixed = dict(values)

    def _suggest_float(self, name, *args):
        return self.fixed[name] if name in self.fixed else super()._suggest_float(name, *args)

    def _suggest_int(self, name, *args):
        return self.fixed[name] if name in self.fixed else super()._suggest_int(name, *args)

    def _suggest_choice(self, name, *args):
        return self.fixed[name] if name in self.fixed else super()._suggest_choice(name, *args)
