"""Declared constraints on public arguments, checked once at the boundary.

In the manner of scikit-learn's ``_param_validation``: a public function declares,
per argument, the constraints a valid value meets (any one suffices) and
:func:`validate_params` checks them before the body runs. Every message names the
argument and says what was expected::

    @validate_params({"n_trials": [Interval(int, 1, None)], "timeout": [None, POSITIVE]})
    def optimize(build_model, data, *, n_trials=30, timeout=None): ...

    optimize(f, d, n_trials=0)  # ValueError: n_trials: expected an integer >= 1, got 0.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SHOWN = 200  # characters of a user's value an error message quotes


def shown(value: Any, limit: int = SHOWN) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error quotes what the user passed,
    not ten megabytes of it."""
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails: its type is enough
        return f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


class Constraint:
    """A set of valid values: ``holds(value)`` and a phrase saying what they are."""

    def holds(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_int(value) -> bool:
    import numpy as np

    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value) -> bool:
    import numpy as np

    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Interval(Constraint):
    """Integers (``int``) or finite reals (``float``) between ``low`` and ``high``."""

    kind: type
    low: float | None
    high: float | None
    low_open: bool = False
    high_open: bool = False
    doc: str = ""  # says what the numbers mean, where the bounds alone would not

    def holds(self, value) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (
            value > self.high or (self.high_open and value == self.high)
        )

    def describe(self) -> str:
        if self.doc:
            return self.doc
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {self.high}"
        return f"a finite {noun.split()[-1]}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of the given values; ``doc`` says what they mean where a list would not."""

    values: tuple
    doc: str = ""

    def holds(self, value) -> bool:  # the type first: an array's == is not a bool
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        return self.doc or f"one of {list(self.values)}"


@dataclass(frozen=True)
class InstanceOf(Constraint):
    types: tuple[type, ...]
    doc: str

    def holds(self, value) -> bool:
        return isinstance(value, self.types) and not (
            bool not in self.types and isinstance(value, bool)
        )

    def describe(self) -> str:
        return self.doc


@dataclass(frozen=True)
class Satisfies(Constraint):
    """Whatever ``predicate`` accepts, described by ``doc``."""

    predicate: Callable[[Any], bool]
    doc: str

    def holds(self, value) -> bool:
        return bool(self.predicate(value))

    def describe(self) -> str:
        return self.doc


NON_EMPTY_STR = Satisfies(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
BOOL = InstanceOf((bool,), "True or False")


def takes_positional(fn: Any, count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments (True when Python
    cannot tell, as for some built-ins)."""
    if not callable(fn):
        return False
    try:
        inspect.signature(fn).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:  # no signature to inspect
        return True
    return True


def _as_constraint(item) -> Constraint:
    if item is None:
        return Options((None,), "None")
    if isinstance(item, Constraint):
        return item
    raise TypeError(f"not a constraint: {shown(item)}")


def problem(value: Any, constraints: Iterable) -> str | None:
    """``"expected ... or ..."`` when ``value`` meets none of ``constraints``, else None."""
    parsed = [_as_constraint(c) for c in constraints]
    if any(c.holds(value) for c in parsed):
        return None
    none_ok = any(isinstance(c, Options) and c.values == (None,) for c in parsed)
    wanted = [c.describe() for c in parsed if not (isinstance(c, Options) and c.values == (None,))]
    return "expected " + " or ".join(wanted) + (" or None" if none_ok else "")


def check(name: str, value: Any, constraints: Iterable) -> None:
    """Raise ``ValueError`` unless ``value`` meets one of ``constraints``."""
    wrong = problem(value, constraints)
    if wrong:
        raise ValueError(f"{name}: {wrong}, got {shown(value)}.")


def validate_params(constraints: dict[str, list], *, complete: bool = False) -> Callable:
    """Decorate a function so that its arguments are checked against ``constraints``;
    ``complete`` requires a constraint for every parameter (a ``TypeError`` at import)."""

    def decorate(function):
        signature = inspect.signature(function)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__qualname__}: constraints for unknown {sorted(unknown)}")
        missing = set(signature.parameters) - set(constraints)
        if complete and missing:
            raise TypeError(f"{function.__qualname__}: no constraint for {sorted(missing)}")

        @functools.wraps(function)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, allowed in constraints.items():
                check(name, bound.arguments[name], allowed)
            return function(*args, **kwargs)

        checked.__wrapped_constraints__ = constraints
        return checked

    return decorate
