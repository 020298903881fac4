"""The decision rule: how a trained model's outputs become a class, tuned on validation.

A loss shapes the scores; the rule that turns scores into a decision is a second,
cheap lever that most searches leave at its default (arg-max, or 0.5). lossearch
tunes it on the validation predictions of every trial and exports it with the loss:

* **multiclass**: post-hoc logit adjustment (Menon et al., 2021),
  ``argmax(logits - tau * log(prior))``. ``tau`` is chosen on a grid by the
  class-balanced log-loss of the adjusted probabilities: for balanced accuracy and
  other class-averaged metrics this is the smooth, proper counterpart of the metric,
  so ``tau`` does not chase the one or two validation samples of a tail class.
  A model trained with the logit-adjusted loss gets ``tau`` near 0; plain CE near 1.
* **binary and multi-label**: a decision threshold per output, by the objective's
  ``threshold_rule`` (:mod:`lossearch.metrics.objectives`): ``"balanced_log_loss"``
  (G-mean, balanced accuracy, and threshold-free objectives such as PR-AUC) takes the
  logit shift that minimises the class-balanced log-loss; ``"f1"`` (F1 objectives)
  maximises F1 on validation.

Like the choice of the config, a tuned rule replaces the model's own arg-max / 0.5 only when
it is *clearly* better: its class-balanced log-loss gain must exceed
:data:`lossearch._noise.Z_CLEAR` standard errors of a paired bootstrap over the validation
samples. With one or two samples in a tail class that is rarely the case, and the
rule stays the identity (``tau = 0`` or threshold 0.5).

:class:`Decision` is stored in the loss JSON as a versioned ``decision`` block and
applied by :class:`lossearch.layers.DecisionLayer`, which outputs adjusted
probabilities whose arg-max (or ``>= 0.5``) is the decision.

Example:
    >>> import numpy as np
    >>> decision = Decision.logit_adjustment(tau=1.0, class_counts=[90, 10])
    >>> decision.apply(np.array([[0.8, 0.2]])).argmax(-1).tolist()
    [1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossearch._noise import balanced_mean, clearly_lower_balanced
from lossearch._params import is_number
from lossearch._validation import shown

DECISION_FORMAT = "lossearch.decision/1"
KINDS = ("logit_adjustment", "threshold")
MAX_TAU = 100.0  # far beyond any tuned value (the grid stops at 2); larger ones overflow
TAU_GRID = tuple(np.round(np.arange(0.0, 2.01, 0.1), 2).tolist())
# logit shifts for thresholds: sigmoid(shift) spans about 0.007 to 0.993
SHIFT_GRID = tuple(np.round(np.arange(-5.0, 5.01, 0.1), 2).tolist())
THRESHOLD_RULES = ("balanced_log_loss", "f1")
EPS = 1e-7  # where losses are computed from probabilities (tuning the rule)
# Applying the rule clips only to float64's range: a wider clip would tie confident outputs
# and change ranking metrics (a 1e-7 clip once moved a test PR-AUC by 1.2 points).
_TINY, _EPSNEG = np.finfo(np.float64).tiny, np.finfo(np.float64).epsneg


@dataclass(frozen=True)
class Decision:
    """A tuned decision rule (see the module docstring).

    Args:
        kind: ``"logit_adjustment"`` (multiclass) or ``"threshold"`` (binary, multi-label).
        tau: logit-adjustment strength.
        log_prior: ``log`` of the training class frequencies (multiclass).
        threshold: probability threshold per output (binary: one value).
        metric: what the rule was tuned for, for reports.
    """

    kind: str
    tau: float = 0.0
    log_prior: tuple[float, ...] | None = None
    threshold: tuple[float, ...] | None = None
    metric: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"decision.kind: expected one of {list(KINDS)}, got {shown(self.kind)}."
            )
        if not is_number(self.tau) or abs(self.tau) > MAX_TAU:
            raise ValueError(
                f"decision.tau: expected a number in [-{MAX_TAU:g}, {MAX_TAU:g}], got "
                f"{shown(self.tau)}."
            )
        object.__setattr__(self, "tau", float(self.tau))
        if self.kind == "logit_adjustment":
            values = _floats("decision.log_prior", self.log_prior, high=0.0)
            object.__setattr__(self, "log_prior", values)
            object.__setattr__(self, "threshold", None)
        else:
            values = _floats("decision.threshold", self.threshold, low=0.0, high=1.0, open_=True)
            object.__setattr__(self, "threshold", values)
            object.__setattr__(self, "log_prior", None)
        if not isinstance(self.metric, str):
            raise ValueError(f"decision.metric: expected a string, got {shown(self.metric)}.")

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def logit_adjustment(cls, tau: float, class_counts: Sequence[int], metric: str = ""):
        counts = np.asarray(class_counts, dtype=np.float64)
        return cls("logit_adjustment", tau=tau, log_prior=_log_prior(counts), metric=metric)

    @classmethod
    def thresholds(cls, threshold: float | Sequence[float], metric: str = ""):
        values = [threshold] if is_number(threshold) else list(threshold)
        return cls("threshold", threshold=tuple(values), metric=metric)

    # -- applying --------------------------------------------------------------------------

    def apply(self, y_prob: np.ndarray) -> np.ndarray:
        """Adjusted probabilities: arg-max (multiclass) or ``>= 0.5`` gives the decision.

        A monotone map of each output, in float64 with no clipping beyond float64's own
        range, so that ranking metrics (PR-AUC) are the same before and after it.
        """
        y_prob = np.asarray(y_prob, dtype=np.float64)
        if self.kind == "logit_adjustment":
            log_p = np.log(np.clip(y_prob, _TINY, 1.0))
            return _softmax(log_p - self.tau * np.array(self.log_prior))
        p = np.clip(y_prob, _TINY, 1.0 - _EPSNEG)
        return _sigmoid(np.log(p) - np.log1p(-p) - _logit(np.array(self.threshold)))

    def describe(self) -> str:
        """``post-hoc logit adjustment (0.7 x log prior)``, ``threshold 0.31``; a rule that
        changes nothing (tau 0, thresholds 0.5) says so: ``arg-max (no adjustment)``,
        ``threshold 0.5 (none)``. Not "tau=": beside a logit-adjusted loss's own tau, in the
        same line, it read as the same parameter."""
        if self.kind == "logit_adjustment":
            if self.tau == 0:
                return "arg-max (no adjustment)"
            return f"post-hoc logit adjustment ({self.tau:g} x log prior)"
        if all(t == 0.5 for t in self.threshold):
            return "threshold 0.5 (none)"
        values = ", ".join(f"{t:.3g}" for t in self.threshold)
        return f"threshold {values}" + (f" ({self.metric})" if self.metric else "")

    # -- serialization ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": DECISION_FORMAT, "kind": self.kind}
        if self.kind == "logit_adjustment":
            data.update(tau=self.tau, log_prior=list(self.log_prior))
        else:
            data["threshold"] = list(self.threshold)
        data["metric"] = self.metric
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "decision") -> Decision:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}.")
        if data.get("format") != DECISION_FORMAT:
            raise ValueError(
                f"{source}: 'format' must be {shown(DECISION_FORMAT)}, got "
                f"{shown(data.get('format'))}."
            )
        known = ("kind", "tau", "log_prior", "threshold", "metric")
        unknown = sorted(set(data) - set(known) - {"format"})
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; valid keys: {list(known)}.")
        return cls(**{k: data[k] for k in known if k in data})


def _floats(name, values, low=None, high=None, open_=False) -> tuple[float, ...]:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f"{name}: expected a non-empty list of numbers, got {shown(values)}.")
    for v in values:
        bad = not is_number(v) or (low is not None and v < low) or (high is not None and v > high)
        if bad or (open_ and v in (low, high)):
            bounds = f" in {'(' if open_ else '['}{low}, {high}{')' if open_ else ']'}"
            raise ValueError(f"{name}: expected numbers{bounds if low is not None else ''}.")
    return tuple(float(v) for v in values)


def _log_prior(counts: np.ndarray) -> tuple[float, ...]:
    prior = (counts + 0.5) / (counts + 0.5).sum()  # +0.5: a class seen 0 times stays finite
    return tuple(np.log(prior).tolist())


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) of a very negative z: inf, sigmoid 0
        return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


# -- fitting ----------------------------------------------------------------------------------


def _f1(y, pred) -> float:
    tp = float(np.sum((pred == 1) & (y == 1)))
    denom = float(np.sum(pred == 1) + np.sum(y == 1))
    return 2 * tp / denom if denom else 0.0


def _best_shift(y: np.ndarray, p: np.ndarray, threshold_rule: str) -> float:
    """The threshold of one binary output (see the module docstring)."""
    if not y.any() or y.all():
        return 0.5  # nothing to tune on
    z = _logit(p)
    if threshold_rule == "f1":
        scores = [_f1(y, (z >= s).astype(int)) for s in SHIFT_GRID]
        best = max(scores)
        # the middle of the best plateau: less sensitive to one validation sample
        ties = [s for s, v in zip(SHIFT_GRID, scores, strict=True) if v >= best - 1e-12]
        return float(_sigmoid(np.median(ties)))
    losses = [balanced_mean(_binary_losses(y, z - s), y) for s in SHIFT_GRID]
    shift = SHIFT_GRID[int(np.argmin(losses))]
    if not clearly_lower_balanced(_binary_losses(y, z - shift), _binary_losses(y, z), y):
        return 0.5  # not clearly better than the model's own 0.5
    return float(_sigmoid(shift))


def _binary_losses(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-sample log-loss of logits ``z``."""
    p = np.clip(_sigmoid(z), EPS, 1.0 - EPS)
    return -np.where(y == 1, np.log(p), np.log1p(-p))


def fit_decision(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    task: str,
    class_counts: Sequence[int],
    metric: str,
    threshold_rule: str = "balanced_log_loss",
) -> Decision:
    """The decision rule for these validation predictions (see the module docstring);
    ``metric`` names the objective it is for, ``threshold_rule`` (one of
    :data:`THRESHOLD_RULES`) how a binary threshold is tuned.

    Example:
        >>> y = np.array([0, 0, 0, 1]); p = np.array([[.9, .1], [.8, .2], [.7, .3], [.6, .4]])
        >>> fit_decision(y, p, task="multiclass", class_counts=[30, 10], metric="x").kind
        'logit_adjustment'
    """
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=np.float64)
    if task == "multiclass":
        log_prior = np.array(_log_prior(np.asarray(class_counts, dtype=np.float64)))
        log_p = np.log(np.clip(y_prob, EPS, 1.0))
        rows = np.arange(len(y_true))

        def sample_losses(tau):
            return -np.log(np.clip(_softmax(log_p - tau * log_prior)[rows, y_true], EPS, 1.0))

        losses = [balanced_mean(sample_losses(t), y_true) for t in TAU_GRID]
        tau = TAU_GRID[int(np.argmin(losses))]
        if not clearly_lower_balanced(sample_losses(tau), sample_losses(0.0), y_true):
            tau = 0.0  # not clearly better than the model's own arg-max
        return Decision.logit_adjustment(tau, class_counts, metric=metric)
    y = y_true.reshape(len(y_true), -1).astype(np.int64)
    p = y_prob.reshape(len(y_prob), -1)
    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(
            f"threshold_rule: expected one of {list(THRESHOLD_RULES)}, got {shown(threshold_rule)}."
        )
    thresholds = [_best_shift(y[:, j], p[:, j], threshold_rule) for j in range(p.shape[1])]
    return Decision.thresholds([min(max(t, 1e-3), 1 - 1e-3) for t in thresholds], metric=metric)


def pooled(y_true: np.ndarray, runs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Several runs' predictions of the same validation set, stacked for one fit."""
    return np.concatenate([y_true] * len(runs)), np.concatenate(list(runs))
