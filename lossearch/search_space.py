"""Search spaces over loss configurations, loaded from YAML, drawn define-by-run.

A space lists loss families with their parameter distributions, weight schemes
with theirs, label smoothing and deferred re-weighting, plus **recipes**: known
configurations enqueued as the first trials. :meth:`SearchSpace.sample` draws a
:class:`~lossearch.LossConfig` through a :class:`ParamSource`, the one small
interface a backend implements (Optuna's trial, Keras Tuner's ``hp``), so
parameters are conditional on the family / scheme that uses them:

    family ─┬─ "focal.gamma", "focal.alpha", ...   (only for that family)
    weights ┴─ "weights.effective_number.beta", ... (only for that scheme)
    label_smoothing, drw_start                       (drw_start only with weights)

Example:
    >>> space = SearchSpace.load("quick", task="multiclass")
    >>> [r.name for r in space.recipes][:2]
    ['ce_baseline', 'inverse_weighted_ce']
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from lossearch._params import Param
from lossearch._validation import shown
from lossearch.config import LossConfig, family_params
from lossearch.losses.families import SPECS, TASKS
from lossearch.space_files import (
    SpaceError,
    bundled_path,
    bundled_spaces,
    read_space_file,
)
from lossearch.weights import SCHEMES

FORMAT = "lossearch.space/1"
_TOP_KEYS = {
    "format",
    "name",
    "description",
    "tasks",
    "by_task",
    "families",
    "weights",
    "label_smoothing",
    "drw_start",
    "recipes",
}
_RECIPE_KEYS = {
    "name",
    "family",
    "params",
    "weights",
    "weight_params",
    "label_smoothing",
    "drw_start",
}


class ParamSource(Protocol):
    """Where parameter values come from: a backend's trial, or a recipe."""

    def float(
        self, name: str, low: float, high: float, *, log: bool, step: float | None, default: Any
    ) -> float: ...

    def int(self, name: str, low: int, high: int, *, log: bool, step: int, default: Any) -> int: ...

    def categorical(self, name: str, choices: Sequence[Any], *, default: Any) -> Any: ...

    def scope(self, parent: str, values: Sequence[Any]) -> AbstractContextManager:
        """Parameters drawn inside exist only when ``parent`` takes one of ``values``."""
        ...


# -- distributions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def draw(self, source: ParamSource, name: str, default: Any):
        return source.float(
            name, self.low, self.high, log=self.log, step=self.step, default=default
        )

    def values(self):
        return [self.low, self.high]

    def contains(self, value) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False
    step: int = 1

    def draw(self, source: ParamSource, name: str, default: Any):
        return source.int(name, self.low, self.high, log=self.log, step=self.step, default=default)

    def values(self):
        return [self.low, self.high]

    def contains(self, value) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


@dataclass(frozen=True)
class Categorical:
    choices: tuple

    def draw(self, source: ParamSource, name: str, default: Any):
        return source.categorical(name, self.choices, default=default)

    def values(self):
        return list(self.choices)

    def contains(self, value) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class Fixed:
    value: Any

    def draw(self, source: ParamSource, name: str, default: Any):
        return self.value

    def values(self):
        return [self.value]

    def contains(self, value) -> bool:
        return value == self.value


Distribution = Float | Int | Categorical | Fixed


@dataclass(frozen=True)
class Recipe:
    """A known-good configuration, measured first on the user's data."""

    name: str
    family: str
    params: dict = field(default_factory=dict)
    weights: str = "none"
    weight_params: dict = field(default_factory=dict)
    label_smoothing: float = 0.0
    drw_start: int | float | None = None

    def values(self) -> dict[str, Any]:
        """The recipe as parameter names of :meth:`SearchSpace.sample`."""
        named = {"family": self.family, "weights": self.weights}
        named.update({f"{self.family}.{k}": v for k, v in self.params.items()})
        named.update({f"weights.{self.weights}.{k}": v for k, v in self.weight_params.items()})
        named["label_smoothing"] = self.label_smoothing
        named["drw_start"] = self.drw_start
        return named


# -- the space --------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """Families, weight schemes, smoothing, DRW and recipes; see the module docstring."""

    name: str
    families: dict[str, dict[str, Distribution]]
    weights: dict[str, dict[str, Distribution]]
    label_smoothing: Distribution = Fixed(0.0)
    drw_start: Distribution = Fixed(None)
    recipes: tuple[Recipe, ...] = ()
    tasks: tuple[str, ...] = TASKS
    description: str = ""
    source: str = "<dict>"
    # recipes left out because a value of theirs lies outside this space (a narrowed copy of
    # a bundled file): "recipe 'focal': focal.gamma=2.0 is outside ...", said in the summary
    skipped_recipes: tuple[str, ...] = ()

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def load(cls, space: str | os.PathLike | Mapping | SearchSpace, task: str | None = None):
        """A space from a bundled name, a YAML path, a dict or a ``SearchSpace``.

        With ``task``, ``default`` resolves to the task's space and families that
        do not support the task are dropped (see :meth:`for_task`).
        """
        if isinstance(space, SearchSpace):
            loaded = space
        elif isinstance(space, Mapping):
            loaded = cls.from_dict(space, "<dict>", task)
        elif isinstance(space, str | os.PathLike):
            loaded = cls.from_file(space, task)
        else:
            raise ValueError(
                f"space: expected a bundled name ({', '.join(bundled_spaces())}), a YAML path, a "
                f"dict or a SearchSpace, got {type(space).__name__}."
            )
        return loaded.for_task(task) if task else loaded

    @classmethod
    def from_file(cls, space: str | os.PathLike, task: str | None = None) -> SearchSpace:
        path = Path(space)
        if not path.suffix and not path.exists():
            bundled = bundled_path(str(space))
            if bundled is None:
                raise ValueError(
                    f"space: unknown space {shown(str(space))}; bundled spaces: "
                    f"{', '.join(bundled_spaces())}, or pass a YAML path or a dict."
                )
            path = bundled
        if not path.is_file():
            raise ValueError(f"space: no such file {shown(str(path))}.")
        return cls.from_dict(read_space_file(path), str(path), task)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", task: str | None = None):
        def fail(key, reason):
            raise SpaceError(f"space {source}: key {shown(key)}: {reason}.")

        if not isinstance(data, Mapping):
            raise SpaceError(f"space {source}: expected a mapping at the top level.")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            fail(unknown[0], f"unknown key; valid keys: {', '.join(sorted(_TOP_KEYS))}")
        if data.get("format", FORMAT) != FORMAT:
            fail("format", f"expected {shown(FORMAT)}")
        if "by_task" in data:
            return cls._by_task(data["by_task"], source, task, fail)
        tasks = tuple(data.get("tasks", TASKS))
        if not tasks or any(t not in TASKS for t in tasks):
            fail("tasks", f"expected a list drawn from {list(TASKS)}")
        families = _parse_section(data.get("families"), "families", SPECS, family_params, fail)
        weights = _parse_section(
            data.get("weights", {"none": {}}),
            "weights",
            SCHEMES,
            lambda name: SCHEMES[name].params,
            fail,
        )
        smoothing = _parse_dist(data.get("label_smoothing", 0.0), "label_smoothing", fail)
        for value in smoothing.values():
            if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                fail("label_smoothing", f"values must lie in [0, 1), got {shown(value)}")
        drw = _parse_dist(data.get("drw_start"), "drw_start", fail)
        for value in drw.values():
            if value is not None and not (
                (isinstance(value, int) and value >= 0)
                or (isinstance(value, float) and 0 < value < 1)
            ):
                fail(
                    "drw_start",
                    f"values must be null, an epoch >= 0 or a fraction, got {shown(value)}",
                )
        space = cls(
            name=str(data.get("name") or Path(source).stem),
            families=families,
            weights=weights,
            label_smoothing=smoothing,
            drw_start=drw,
            tasks=tasks,
            description=str(data.get("description", "")),
            source=source,
        )
        recipes = tuple(_parse_recipe(r, i, fail) for i, r in enumerate(data.get("recipes") or []))
        space = replace(space, recipes=recipes)
        kept, skipped = [], []
        for recipe in recipes:
            outside = space.outside(recipe)
            if outside:  # a value the user's space leaves out: skipped, and the summary says so
                skipped.append(f"recipe {recipe.name!r} skipped: {outside}")
                continue
            space.check_recipe(recipe, fail)
            kept.append(recipe)
        return replace(space, recipes=tuple(kept), skipped_recipes=tuple(skipped))

    @classmethod
    def _by_task(cls, mapping, source, task, fail):
        if not isinstance(mapping, Mapping) or any(t not in TASKS for t in mapping):
            fail("by_task", f"expected a mapping from {list(TASKS)} to space names")
        if task is None:
            task = "multiclass"
        if task not in mapping:
            fail("by_task", f"no space for task {shown(task)}")
        return cls.from_file(mapping[task], task)

    def for_task(self, task: str) -> SearchSpace:
        """Only the families and recipes that support ``task``."""
        if task not in self.tasks:
            raise ValueError(
                f"space: {shown(self.name)} is for {list(self.tasks)} tasks, but the data "
                f"is {shown(task)}; "
                "choose another space (lossearch spaces lists them)."
            )
        families = {f: p for f, p in self.families.items() if task in SPECS[f].tasks}
        if not families:
            raise ValueError(
                f"space: {shown(self.name)} has no loss family for a {shown(task)} task."
            )
        recipes = tuple(r for r in self.recipes if r.family in families)
        return replace(self, families=families, recipes=recipes, tasks=(task,))

    # -- drawing ------------------------------------------------------------------------

    def draw(self, source: ParamSource) -> dict[str, Any]:
        """Draw the loss fields of one configuration (define-by-run)."""
        family = source.categorical("family", tuple(self.families), default=None)
        with source.scope("family", [family]):
            params = {
                name: dist.draw(source, f"{family}.{name}", _default(family_params(family), name))
                for name, dist in self.families[family].items()
            }
        weights = source.categorical("weights", tuple(self.weights), default="none")
        scheme_params = SCHEMES[weights].params
        with source.scope("weights", [weights]):
            weight_params = {
                name: dist.draw(source, f"weights.{weights}.{name}", _default(scheme_params, name))
                for name, dist in self.weights[weights].items()
            }
        smoothing = self.label_smoothing.draw(source, "label_smoothing", 0.0)
        drw = None
        if weights != "none":
            with source.scope("weights", [w for w in self.weights if w != "none"]):
                drw = self.drw_start.draw(source, "drw_start", None)
        return {
            "family": family,
            "params": params,
            "weights": weights,
            "weight_params": weight_params,
            "label_smoothing": smoothing,
            "drw_start": drw,
        }

    def sample(self, source: ParamSource, **facts) -> LossConfig:
        """One configuration; ``facts`` are the data fields of :class:`LossConfig`
        (``class_counts``, ``class_names``, ``task``, ``from_logits``, ``n_samples``)."""
        return LossConfig(**self.draw(source), **facts)

    def recipe_values(self, recipe: Recipe) -> dict[str, Any]:
        """The parameter values that make :meth:`draw` return ``recipe``."""
        source = RecipeSource(recipe)
        self.draw(source)
        return source.asked

    def outside(self, recipe: Recipe) -> str | None:
        """Why the space cannot draw a value of ``recipe`` (its range or choices leave it out),
        or None when it can or the recipe names a family or scheme the space lacks (a mistake
        :meth:`check_recipe` refuses)."""
        if recipe.family not in self.families or recipe.weights not in self.weights:
            return None
        dims = {f"{recipe.family}.{k}": d for k, d in self.families[recipe.family].items()} | {
            f"weights.{recipe.weights}.{k}": d for k, d in self.weights[recipe.weights].items()
        }
        dims["label_smoothing"] = self.label_smoothing
        dims["drw_start"] = self.drw_start
        asked = self.recipe_values(recipe)
        for name, value in asked.items():
            if name in dims and not dims[name].contains(value):
                return f"{name}={shown(value)} is outside the space's {dims[name]}"
        for name, value in recipe.values().items():
            if name not in asked and value != dims.get(name, Fixed(value)).values()[0]:
                return f"{name}={shown(value)} is not a parameter this space draws"
        return None

    def check_recipe(self, recipe: Recipe, fail):
        """Fail unless the space can draw ``recipe`` and it is a valid config."""
        where = f"recipes.{recipe.name}"
        if recipe.family not in self.families:
            fail(where, f"family {shown(recipe.family)} is not in the space's families")
        if recipe.weights not in self.weights:
            fail(where, f"weights {shown(recipe.weights)} is not in the space's weights")
        outside = self.outside(recipe)
        if outside:
            fail(where, outside)
        if recipe.drw_start is not None and recipe.weights == "none":
            fail(where, "drw_start needs a weight scheme")
        task = next((t for t in self.tasks if t in SPECS[recipe.family].tasks), None)
        if task is None:
            fail(where, f"family {shown(recipe.family)} supports none of the space's tasks")
        # Placeholder counts: validates every field that does not depend on the data.
        try:
            self.sample(
                RecipeSource(recipe),
                task=task,
                class_counts=[20, 10] if task == "binary" else [20, 10, 5],
                n_samples=40,
            )
        except ValueError as exc:
            fail(where, str(exc))

    def describe(self) -> str:
        families = ", ".join(self.families)
        return f"{self.name}: {families} | weights: {', '.join(self.weights)}"


class RecipeSource:
    """A :class:`ParamSource` answering from a recipe; records what was asked."""

    def __init__(self, recipe: Recipe):
        self.values = recipe.values()
        self.asked: dict[str, Any] = {}

    def _answer(self, name, default):
        value = self.values.get(name, default)
        self.asked[name] = value
        return value

    def float(self, name, low, high, *, log, step, default):
        return self._answer(name, default)

    def int(self, name, low, high, *, log, step, default):
        return self._answer(name, default)

    def categorical(self, name, choices, *, default):
        return self._answer(name, default)

    def scope(self, parent, values):
        return nullcontext()


def _default(specs: Mapping[str, Param], name: str):
    return specs[name].default if name in specs else None


def _parse_dist(value, key, fail) -> Distribution:
    if not isinstance(value, Mapping):
        if isinstance(value, list):
            fail(key, "a list is ambiguous; write {type: categorical, choices: [...]}")
        return Fixed(value)
    kind = value.get("type")
    allowed = {
        "float": {"type", "low", "high", "log", "step"},
        "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"},
    }
    if kind not in allowed:
        fail(key, f"'type' must be one of {list(allowed)}, got {shown(kind)}")
    extra = sorted(set(value) - allowed[kind])
    if extra:
        fail(key, f"unknown field(s) {extra} for a {kind} distribution")
    if kind == "categorical":
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            fail(key, "'choices' must be a non-empty list")
        twice = [c for i, c in enumerate(choices) if c in choices[:i]]
        if twice:
            fail(key, f"'choices' holds {shown(twice[0])} twice; list each choice once")
        return Categorical(tuple(choices))
    low, high, log = value.get("low"), value.get("high"), value.get("log", False)
    number = int if kind == "int" else (int, float)
    for bound_name, bound in (("low", low), ("high", high)):
        if not isinstance(bound, number) or isinstance(bound, bool) or not math.isfinite(bound):
            fail(key, f"'{bound_name}' must be a finite {kind}, got {shown(bound)}")
    if low > high:
        fail(key, f"'low' ({low}) is above 'high' ({high})")
    if not isinstance(log, bool):
        fail(key, "'log' must be true or false")
    if log and low <= 0:
        fail(key, "a log-scale range needs 'low' > 0")
    step = value.get("step", 1 if kind == "int" else None)
    _check_step(step, low, high, log, kind, key, fail)
    if kind == "int":
        return Int(low, high, log, step)
    return Float(float(low), float(high), log, step)


def _check_step(step, low, high, log, kind, key, fail) -> None:
    """A step must be a positive number no wider than the range, and not on a log scale
    (Optuna draws neither; it would bend the range without a word)."""
    if step is None:
        return
    number = int if kind == "int" else (int, float)
    if not isinstance(step, number) or isinstance(step, bool) or not math.isfinite(step):
        fail(key, f"'step' must be a finite {kind}, got {shown(step)}")
    if step <= 0:
        fail(key, f"'step' must be > 0, got {step}")
    if log and not (kind == "int" and step == 1):
        fail(key, "a log-scale range takes no 'step'")
    if high > low and step > high - low:
        fail(key, f"'step' ({step}) is wider than the range [{low}, {high}]")


def _parse_section(section, key, registry, specs_of, fail):
    if not isinstance(section, Mapping) or not section:
        fail(key, "expected a non-empty mapping of names to their parameters")
    parsed = {}
    for name, params in section.items():
        if name not in registry:
            fail(f"{key}.{name}", f"unknown name; expected one of: {', '.join(registry)}")
        params = params or {}
        if not isinstance(params, Mapping):
            fail(f"{key}.{name}", "expected a mapping of parameter distributions")
        specs = specs_of(name)
        dists = {}
        for param, raw in params.items():
            where = f"{key}.{name}.{param}"
            if param not in specs:
                fail(where, f"unknown parameter; valid: {', '.join(specs) or 'none'}")
            dist = _parse_dist(raw, where, fail)
            for value in dist.values():
                problem = specs[param].check(value)
                if problem:
                    fail(where, problem)
            dists[param] = dist
        parsed[name] = dists
    return parsed


def _parse_recipe(raw, index, fail) -> Recipe:
    where = f"recipes[{index}]"
    if not isinstance(raw, Mapping) or "family" not in raw:
        fail(where, "expected a mapping with at least 'family'")
    unknown = sorted(set(raw) - _RECIPE_KEYS)
    if unknown:
        fail(where, f"unknown field(s) {unknown}; valid: {', '.join(sorted(_RECIPE_KEYS))}")
    return Recipe(
        name=str(raw.get("name", f"recipe_{index}")),
        family=raw["family"],
        params=dict(raw.get("params") or {}),
        weights=raw.get("weights", "none"),
        weight_params=dict(raw.get("weight_params") or {}),
        label_smoothing=raw.get("label_smoothing", 0.0),
        drw_start=raw.get("drw_start"),
    )
