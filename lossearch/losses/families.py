"""What each loss family is, without Keras: the tasks it supports, its parameters and
whether it needs the class counts.

:class:`lossearch.LossConfig` and the search spaces validate against :data:`SPECS`, so that
reading, checking and exporting a config needs neither Keras nor TensorFlow (``lossearch
export`` and ``report`` answer in a second); the Keras classes of
:mod:`lossearch.losses.losses` take their ``tasks``, ``params`` and ``needs_counts`` from here.

Example:
    >>> SPECS["focal"].params["gamma"].default
    2.0
    >>> SPECS["ldam"].tasks
    ('multiclass',)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lossearch._params import Param, number, number_or_list, positive
from lossearch._validation import shown

TASKS = ("binary", "multiclass", "multilabel")


def _check_counts(value) -> str | None:
    if not isinstance(value, list | tuple) or len(value) < 2:
        return f"expected the training count of each class (a list of >= 2), got {shown(value)}"
    bad = [v for v in value if positive()(v)]
    return f"expected positive counts, got {shown(bad[0])}" if bad else None


_COUNTS = Param(None, _check_counts, "training samples per class")


@dataclass(frozen=True)
class Family:
    """A loss family's facts: its name, the tasks it supports, its own arguments (as
    :class:`lossearch._params.Param`) and whether it needs the training class counts."""

    name: str
    params: Mapping[str, Param] = field(default_factory=dict)
    tasks: tuple[str, ...] = TASKS
    needs_counts: bool = False


SPECS: dict[str, Family] = {
    f.name: f
    for f in (
        Family("ce"),
        Family(
            "focal",
            {
                "gamma": Param(2.0, number(0.0), "focusing exponent, >= 0"),
                "alpha": Param(None, number_or_list(number(0.0), allow_none=True), "class balance"),
            },
        ),
        Family(
            "poly1", {"epsilon": Param(1.0, number(-1.0), "weight of the first polynomial term")}
        ),
        Family(
            "logit_adjusted",
            {
                "tau": Param(1.0, number(0.0), "strength of the prior adjustment"),
                "class_counts": _COUNTS,
            },
            ("multiclass", "binary"),
            needs_counts=True,
        ),
        Family(
            "ldam",
            {
                "max_margin": Param(0.5, positive(), "margin of the rarest class"),
                "scale": Param(1.0, positive(), "logit scale s"),
                "class_counts": _COUNTS,
            },
            ("multiclass",),
            needs_counts=True,
        ),
        Family(
            "vs",
            {
                "gamma": Param(0.3, number(0.0), "exponent of the multiplicative scaling"),
                "tau": Param(1.0, number(0.0), "strength of the additive adjustment"),
                "class_counts": _COUNTS,
            },
            ("multiclass",),
            needs_counts=True,
        ),
        Family(
            "pos_weighted_bce",
            {"pos_weight": Param(1.0, number_or_list(positive()), "scalar or one per label")},
            ("binary", "multilabel"),
        ),
        Family(
            "asymmetric",
            {
                "gamma_pos": Param(0.0, number(0.0), "focusing exponent of positives"),
                "gamma_neg": Param(4.0, number(0.0), "focusing exponent of negatives"),
                "clip": Param(
                    0.05, number(0.0, 1.0, high_open=True), "probability margin for negatives"
                ),
            },
            ("multilabel", "binary"),
        ),
        Family(
            "nce",
            {
                "alpha": Param(1.0, number(0.0), "weight of normalized cross-entropy"),
                "beta": Param(1.0, number(0.0), "weight of reverse cross-entropy"),
            },
            ("multiclass",),
        ),
    )
}
