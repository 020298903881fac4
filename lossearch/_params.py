"""Declared parameters of loss families and weight schemes, and their checks.

A family or scheme declares ``{name: Param(default, check)}``; :func:`resolve`
fills defaults, rejects unknown names (listing the valid ones) and runs the
checks, so every error names the field and says what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossearch._validation import shown

Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Param:
    """One parameter: its default, a check returning a problem (or None), a doc line."""

    default: Any
    check: Check
    doc: str = ""


def is_number(value: Any) -> bool:
    """A finite real: Python's, or NumPy's (``np.float32(2.0)`` from an array, say)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def plain(value: Any) -> Any:
    """NumPy scalars as Python numbers (configs are JSON), lists item by item."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def number(low: float | None = None, high: float | None = None, *, high_open=False) -> Check:
    """A finite real in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    closing = ")" if high_open else "]"
    wanted = f"a number in [{low}, {high}{closing}" if high is not None else f"a number >= {low}"
    if low is None and high is None:
        wanted = "a finite number"

    def check(value):
        if not is_number(value):
            return f"expected {wanted}, got {shown(value)}"
        if low is not None and value < low:
            return f"expected {wanted}, got {shown(value)}"
        if high is not None and (value > high or (high_open and value == high)):
            return f"expected {wanted}, got {shown(value)}"
        return None

    return check


def positive() -> Check:
    def check(value):
        return (
            None if is_number(value) and value > 0 else f"expected a number > 0, got {shown(value)}"
        )

    return check


def number_or_list(scalar: Check, *, allow_none=False, allow: tuple[str, ...] = ()) -> Check:
    """A scalar accepted by ``scalar``, a non-empty list of them, ``None`` or a keyword."""

    def check(value):
        if value is None and allow_none:
            return None
        if isinstance(value, str):
            return None if value in allow else f"expected a number or one of {list(allow)}"
        if isinstance(value, list | tuple):
            if not value:
                return "expected a non-empty list"
            problems = [p for p in map(scalar, value) if p]
            return f"list item {problems[0]}" if problems else None
        return scalar(value)

    return check


def one_of(*choices: str) -> Check:
    def check(value):
        return None if value in choices else f"expected one of {list(choices)}, got {shown(value)}"

    return check


def resolve(owner: str, specs: Mapping[str, Param], given: Mapping[str, Any] | None) -> dict:
    """Defaults merged with ``given``, checked; errors name ``owner.param``."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(specs))
    if unknown:
        valid = ", ".join(specs) or "none"
        raise ValueError(f"{owner}: unknown parameter(s) {unknown}; valid parameters: {valid}.")
    resolved = {name: plain(given.get(name, spec.default)) for name, spec in specs.items()}
    for name, value in resolved.items():
        problem = specs[name].check(value)
        if problem:
            raise ValueError(f"{owner}.{name}: {problem}.")
    return resolved
