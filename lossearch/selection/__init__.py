"""Choosing the config to trust, in one place: :func:`select` returns a :class:`Selection`.

* :mod:`.roles`: who is who among the trials (the CE baseline, the incumbent, the top
  trial), for the live search and every reader of a stored study alike.
* :mod:`.confirmation`: the robust rule, an incumbent fixed in advance and replaced only
  when a confirmed candidate beats it clearly (how, and why: its docstring).
* :mod:`.notes`: whether the validation split can judge at all.
"""

from lossearch.selection._select import RULES, TOP_TRIAL, Selection, select, top_trial
from lossearch.selection.confirmation import Candidate, Verdict, confirm, decide
from lossearch.selection.notes import validation_support, validation_warnings
from lossearch.selection.roles import (
    BASELINE_RECIPE,
    baseline_record,
    incumbent_record,
    is_plain_ce,
    pick_candidates,
    top_record,
)

__all__ = [
    "BASELINE_RECIPE",
    "RULES",
    "TOP_TRIAL",
    "Candidate",
    "Selection",
    "Verdict",
    "baseline_record",
    "confirm",
    "decide",
    "incumbent_record",
    "is_plain_ce",
    "pick_candidates",
    "select",
    "top_record",
    "top_trial",
    "validation_support",
    "validation_warnings",
]
