"""What a search was started with, :class:`SearchRun`, and what it shows, :class:`SearchSummary`.

These are the two objects the MLflow parent run is written from (``Tracker.open_search``
and ``Tracker.close_search``). A :class:`SearchSummary` is built from a live
:class:`~lossearch.SearchResult` (``result.search_summary()``) or from a stored study
(``StoredStudy.summary()``), and everything a user reads is rendered from it: the text
of ``result.summary()`` and ``summary.txt``, the HTML report (:mod:`lossearch.report`)
and the MLflow parent run. So the live search, ``lossearch report`` and
``lossearch sync-mlflow`` show the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lossearch._noise import Z_CLEAR
from lossearch.config import LossConfig
from lossearch.metrics.evaluation import PER_CLASS_SHORT
from lossearch.metrics.objectives import summary_metrics
from lossearch.selection import Selection

PHASES = ("search", "confirmation", "refit")  # result.seconds, in this order
_SHORT_NAMES = {"recall": "recall", "f1": "F1", "ap": "AP"}  # as the header shows them


@dataclass(frozen=True)
class SearchRun:
    """What a search's MLflow parent run is opened with: its name, params and tags.

    The live search builds it from its settings and keeps it in the study, so that
    ``lossearch sync-mlflow`` reopens a lost parent run with the same params.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def storage(self) -> str | None:
        """The storage's URL, credentials masked (None: the study was in memory)."""
        storage = self.tags.get("storage")
        return None if storage in (None, "in-memory") else storage

    @property
    def sync_hint(self) -> str:
        """How to bring MLflow up to date with this search's study."""
        if self.storage is None:
            return "(the study was kept in memory: pass storage= to make it syncable)"
        return f"lossearch sync-mlflow --storage {self.storage} --study {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"params": dict(self.params), "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> SearchRun:
        return cls(name, dict(data.get("params", {})), dict(data.get("tags", {})))


@dataclass(frozen=True)
class SearchSummary:
    """A search's pick against the CE baseline, its trials and where its time went.

    Args:
        name: the study's (or Keras Tuner project's) name.
        objective, direction: what was optimised.
        selection: the pick (:class:`~lossearch.selection.Selection`).
        states: trials per state (``COMPLETE``, ``PRUNED``, ``FAIL``, ...).
        history: ``(number, value)`` of each completed trial.
        failures: why trials failed, one reason per failed trial.
        importances: Optuna's parameter importances, ``{}`` when there are none.
        seconds: wall time per phase (:data:`PHASES`), when known.
        closed: whether the search has closed (else ``selection`` is the top trial so far).
        test: the refit pick and plain CE scored on ``test_data``, when there was one.
        stopped_early: why the search stopped before its trial budget, if it did.
    """

    name: str
    objective: str
    direction: str
    selection: Selection
    states: dict[str, int] = field(default_factory=dict)
    history: list[tuple[int, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    importances: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    closed: bool = True
    test: dict | None = None  # {"pick": metrics, "baseline": metrics} on test_data
    stopped_early: str | None = None

    @property
    def title(self) -> str:
        return f"lossearch: {self.name}"

    @property
    def best_config(self) -> LossConfig:
        return self.selection.config

    @property
    def metrics(self) -> dict:
        return self.selection.metrics or {}

    @property
    def baseline_metrics(self) -> dict:
        return self.selection.baseline_metrics or {}

    @property
    def class_names(self) -> list[str]:
        return list(self.metrics.get("per_class", {}))

    @property
    def class_counts(self) -> list[int]:
        return list(self.best_config.class_counts or ())

    @property
    def summary_keys(self) -> list[str]:
        return summary_metrics(self.objective)

    @property
    def confirmed(self) -> bool:
        """Whether the pick's numbers are pooled over confirmation runs."""
        return self.selection.runs > 1

    def text(self) -> str:
        """The summary as text: what ``result.summary()`` prints and ``summary.txt`` holds."""
        if not self.metrics.get("per_class"):  # an objective of the user's own: one number
            return "\n".join(self._headline())
        return "\n".join([*self._headline(), "", *self._per_class(), "", *self._summary_rows()])

    def _headline(self) -> list[str]:
        s, states = self.selection, Counter(self.states)
        lines = [
            f"lossearch: {sum(states.values())} trials ({states['COMPLETE']} complete, "
            f"{states['PRUNED']} pruned, {states['FAIL']} failed); "
            f"objective {self.objective} ({self.direction})",
            f"pick:      {self.best_config.describe()}"
            + (f"  [recipe {s.recipe}]" if s.recipe else f"  [trial {s.chosen.number}]"),
            f"           {self.objective} = {s.value:.4f}"
            + (f" ± {s.std:.4f} (mean ± sd over {s.runs} runs)" if s.runs > 1 else ""),
        ]
        if s.chosen.hp_values:
            values = (
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in s.chosen.hp_values.items()
            )
            lines.append("your hp:   " + ", ".join(values))
        # one plain CE everywhere: unweighted cross-entropy, its decision rule tuned as the
        # pick's is (on validation and on test alike)
        lines += [f"vs CE:     {line}" for line in [self.against_ce()] if line]
        lines += [f"test:      {line}" for line in [self.on_test()] if line]
        lines += [f"why:       {self.why()}"]
        lines += [f"scoring:   {s.scoring}"] if s.scoring else []
        lines += [f"stopped:   early, {self.stopped_early}"] if self.stopped_early else []
        if self.seconds:
            phases = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
            lines.append(f"time:      {phases}")
        lines += [f"warning:   {note}" for note in s.warnings]
        return lines + self._failure_lines()

    def against_ce(self) -> str:
        """The pick against plain cross-entropy, in words: the gain in points, and whether it
        is clear of the seed-to-seed noise (1.64 standard errors) or within it."""
        s = self.selection
        if s.baseline_value is None:
            return ""
        sign = 1.0 if self.direction == "maximize" else -1.0
        gain = sign * (s.value - s.baseline_value) * 100
        both = f"{s.value:.4f} vs {s.baseline_value:.4f}"
        if s.baseline is not None and s.baseline.number == s.chosen.number:
            return f"the pick is plain CE ({s.value:.4f})"
        spreads = self._baseline_row()
        if s.runs < 2 or spreads is None:
            runs = "one run each" if s.runs < 2 else f"{s.runs} runs against {s.baseline_runs}"
            return f"{gain:+.1f} points ({both}, {runs}: too few to tell from noise)"
        base_std, base_runs = spreads
        se = 100 * math.sqrt(s.std**2 / s.runs + base_std**2 / base_runs)
        if gain > Z_CLEAR * se:
            verdict = "clearly better than plain CE"
        elif gain < -Z_CLEAR * se:
            verdict = "clearly worse than plain CE"
        else:
            verdict = "within noise of plain CE"
        return f"{gain:+.1f} points ({both}, {s.runs} runs each): {verdict}"

    def on_test(self) -> str:
        """The objective on ``test_data``: the pick and plain CE, refit the same way."""
        if not self.test:
            return ""
        pick = self.test["pick"]["summary"].get(self.objective)
        base = (self.test.get("baseline") or {}).get("summary", {}).get(self.objective)
        if pick is None:
            return ""
        held = "held out: it chose nothing"
        if base is None:
            return f"{self.objective} = {pick:.4f} ({held})"
        gain = (pick - base) * 100 * (1 if self.direction == "maximize" else -1)
        return f"{self.objective} {pick:.4f} vs plain CE {base:.4f}, {gain:+.1f} points ({held})"

    def _baseline_row(self) -> tuple[float, int] | None:
        """The CE baseline's seed-to-seed sd and runs, from the confirmation table."""
        row = next((r for r in self.selection.table if "baseline" in r.get("role", "")), None)
        if row is None or row.get("runs", 0) < 2:
            return None
        return float(row["seed_std"]), int(row["runs"])

    def why(self) -> str:
        """How the pick was made, in plain words (``selection.reason`` has the numbers)."""
        s = self.selection
        if s.reason.startswith("the study's best trial"):
            return s.reason
        if s.rule == "best" or s.incumbent is None:
            return "the best validation score of the search" + (
                "" if self.closed else " so far (other workers still run trials)"
            )
        kept = f"recipe {s.incumbent.recipe!r}" if s.incumbent.recipe else "the config"
        if s.chosen.number == s.incumbent.number:
            if s.leader_trial is None or s.leader_trial == s.chosen.number:
                if any(r.get("set_aside") for r in s.table) and not _raced_others(s):
                    return (
                        f"{kept}, declared before the search, kept: no other config came near "
                        "enough to be raced once the search stopped early"
                    )
                return f"{kept}, declared before the search, confirmed best on fresh seeds"
            return (
                f"{kept}, declared before the search, kept: the best other config (trial "
                f"{s.leader_trial}) was not clearly better on fresh seeds"
            )
        return (
            f"trial {s.chosen.number} beat {kept} (declared before the search) clearly, on "
            "fresh seeds"
        )

    def _failure_lines(self, shown: int = 3) -> list[str]:
        """Why trials failed: each distinct reason once, with how many trials it ended."""
        counts = Counter(self.failures)
        lines = [
            f"failed:    {n} trial{'s' if n > 1 else ''}: {reason}"
            for reason, n in counts.most_common(shown)
        ]
        if len(counts) > shown:
            lines.append(f"           and {len(counts) - shown} other reasons")
        return lines

    def _per_class(self) -> list[str]:
        trial = self.selection.chosen.number
        scope = (
            f"pooled over the confirmation runs of each (pick: trial {trial}):"
            if self.confirmed
            else f"of the search trials (pick: trial {trial}):"
        )
        best = self.metrics.get("per_class", {})
        base = self.baseline_metrics.get("per_class", {})
        width = max([5, *map(len, best)])
        header = f"{'class':<{width}} {'train':>8} {'val':>6} " + " ".join(
            f"{_SHORT_NAMES[k] + '(' + who + ')':>11}"
            for k in PER_CLASS_SHORT
            for who in ("CE", "pick")
        )
        rows = [
            f"validation metrics, {scope}",
            "(train / val: the samples of each class a trial trains on / is scored on; AP: "
            "average precision, the area under the class's precision-recall curve)",
            header,
            "-" * len(header),
        ]
        counts = self.class_counts
        for i, name in enumerate(best):
            count = counts[i] if i < len(counts) else ""
            cells = [
                _cell(source.get(name, {}).get(key), 11)
                for key in PER_CLASS_SHORT
                for source in (base, best)
            ]
            support = best.get(name, {}).get("support", "")
            rows.append(f"{name:<{width}} {count:>8} {support:>6} " + " ".join(cells))
        return rows

    def summary_values(self) -> list[tuple[str, float | None, float | None]]:
        """``(metric, CE, pick)`` rows: pooled over the runs, but for the objective, whose
        values are the headline's (the mean over runs), so that no two numbers disagree."""
        s = self.selection
        best = self.metrics.get("summary", {})
        base = self.baseline_metrics.get("summary", {})
        rows = []
        for key in self.summary_keys:
            if key == self.objective:
                rows.append((key, s.baseline_value, s.value))
            else:
                rows.append((key, base.get(key), best.get(key)))
        return rows

    def _summary_rows(self) -> list[str]:
        rows = [f"{'metric':<20} {'CE':>8} {'pick':>8}"]
        for key, base, best in self.summary_values():
            rows.append(f"{key:<20} {_cell(base, 8)} {_cell(best, 8)}")
        return rows


def _cell(value, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


def _raced_others(selection) -> bool:
    """Whether any candidate but the pick was raced (not set aside by an early stop)."""
    return any(
        not row.get("set_aside") and row["trial"] != selection.chosen.number
        for row in selection.table
    )
